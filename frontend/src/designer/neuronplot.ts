/**
 * The pure parts of the Neuron ablation tab (neurons.ts): linear scales with round ticks,
 * the scatter's points, box hit-testing, click selection, and the colours of the channel x
 * position matrix (symmetric blue-white-red) and of the mean activation (sequential).
 */

export interface Scale {
  (value: number): number;
  domain: [number, number];
  range: [number, number];
  invert(position: number): number;
  ticks(count?: number): number[];
}

/** A linear map of `domain` onto `range`; an empty domain is widened so nothing divides by 0. */
export function linearScale(domain: [number, number], range: [number, number]): Scale {
  let [d0, d1] = domain;
  if (!Number.isFinite(d0) || !Number.isFinite(d1)) [d0, d1] = [0, 1];
  if (d1 === d0) [d0, d1] = d0 === 0 ? [0, 1] : [d0 - Math.abs(d0) * 0.5, d1 + Math.abs(d1) * 0.5];
  const [r0, r1] = range;
  const scale = ((value: number) => r0 + ((value - d0) / (d1 - d0)) * (r1 - r0)) as Scale;
  scale.domain = [d0, d1];
  scale.range = [r0, r1];
  scale.invert = (position) => d0 + ((position - r0) / (r1 - r0)) * (d1 - d0);
  scale.ticks = (count = 5) => niceTicks(Math.min(d0, d1), Math.max(d0, d1), count);
  return scale;
}

/** About `count` round values (1, 2 or 5 times a power of ten apart) within [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo) || count < 1) return Number.isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)) || 0);
  return ticks;
}

export interface Point {
  channel: number;
  x: number;
  y: number;
}

/** One point per channel at (positive relevance, |negative relevance|) in pixels; values
 * that are not finite count as 0 (the API sends them as null). */
export function scatterPoints(positive: (number | null)[], negative: (number | null)[], x: Scale, y: Scale): Point[] {
  return positive.map((p, channel) => ({ channel, x: x(p ?? 0), y: y(Math.abs(negative[channel] ?? 0)) }));
}

/** The upper end of an axis from 0 that holds every value (with a little room). */
export function axisMax(values: (number | null)[]): number {
  const top = Math.max(0, ...values.map((v) => Math.abs(v ?? 0)));
  return top > 0 ? top * 1.05 : 1;
}

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** The channels whose points lie in the box (its corners in any order; edges included). */
export function pointsInBox(points: Point[], box: Box): number[] {
  const [left, right] = [Math.min(box.x0, box.x1), Math.max(box.x0, box.x1)];
  const [top, bottom] = [Math.min(box.y0, box.y1), Math.max(box.y0, box.y1)];
  return points.filter((p) => p.x >= left && p.x <= right && p.y >= top && p.y <= bottom).map((p) => p.channel);
}

/** The selection after a box drag: the boxed channels, or with `add` those joined to `current`. */
export function boxSelection(current: Set<number>, boxed: number[], add: boolean): Set<number> {
  return new Set(add ? [...current, ...boxed] : boxed);
}

/** The selection after a click on `channel`: with `add` (shift) it is toggled; without, it
 * becomes the only one selected (or nothing, if it already was the only one). */
export function clickSelection(current: Set<number>, channel: number, add: boolean): Set<number> {
  if (add) {
    const next = new Set(current);
    if (next.has(channel)) next.delete(channel);
    else next.add(channel);
    return next;
  }
  return current.size === 1 && current.has(channel) ? new Set() : new Set([channel]);
}

export type Rgb = [number, number, number];

/** Blue-white-red for t in [-1, 1] (matplotlib's "bwr"): -1 blue, 0 white, 1 red. */
export function bwr(t: number): Rgb {
  const v = Math.max(-1, Math.min(1, Number.isFinite(t) ? t : 0));
  const fade = Math.round(255 * (1 - Math.abs(v)));
  return v >= 0 ? [255, fade, fade] : [fade, fade, 255];
}

const SEQUENTIAL: Rgb[] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** A viridis-like sequential colour for t in [0, 1]. */
export function sequential(t: number): Rgb {
  const v = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (SEQUENTIAL.length - 1);
  const i = Math.min(Math.floor(v), SEQUENTIAL.length - 2);
  const f = v - i;
  return SEQUENTIAL[i].map((c, k) => Math.round(c + f * (SEQUENTIAL[i + 1][k] - c))) as Rgb;
}

export const css = ([r, g, b]: Rgb) => `rgb(${r},${g},${b})`;

/** The largest |value| of a matrix (1 if all are 0 or not finite): its symmetric scale. */
export function symmetricLimit(matrix: (number | null)[][]): number {
  let limit = 0;
  for (const row of matrix) for (const v of row) if (v !== null && Number.isFinite(v)) limit = Math.max(limit, Math.abs(v));
  return limit > 0 ? limit : 1;
}

/** The RGBA pixels of a channel x position matrix: row r (channel r) is image row r, each
 * value coloured by bwr(value / limit); values that are not finite are grey. */
export function matrixPixels(matrix: (number | null)[][], limit = symmetricLimit(matrix)): { width: number; height: number; data: Uint8ClampedArray<ArrayBuffer> } {
  const height = matrix.length;
  const width = height ? Math.max(...matrix.map((row) => row.length)) : 0;
  const data = new Uint8ClampedArray(width * height * 4);
  matrix.forEach((row, r) => {
    for (let c = 0; c < width; c++) {
      const v = row[c];
      const rgb: Rgb = v === null || v === undefined || !Number.isFinite(v) ? [160, 160, 160] : bwr(v / limit);
      data.set([...rgb, 255], (r * width + c) * 4);
    }
  });
  return { width, height, data };
}

/** The matrix row (channel) under a vertical offset `y` of an element `height` high. */
export function rowAt(y: number, height: number, rows: number): number | null {
  if (rows < 1 || height <= 0 || y < 0 || y >= height) return null;
  return Math.min(rows - 1, Math.floor((y / height) * rows));
}

/** The channel of the point nearest to (x, y) within `radius`, or null. */
export function nearestPoint(points: Point[], x: number, y: number, radius: number): number | null {
  let best: number | null = null;
  let distance = radius * radius;
  for (const p of points) {
    const d = (p.x - x) ** 2 + (p.y - y) ** 2;
    if (d <= distance) [best, distance] = [p.channel, d];
  }
  return best;
}
