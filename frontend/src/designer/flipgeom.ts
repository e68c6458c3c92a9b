/**
 * Pure logic of the Pixel flipping tab (flipping.ts): canvas <-> input pixel coordinates
 * under a zoom, brush strokes as the server reads them (polylines of (row, column) points
 * with a radius; a pixel is flipped when its centre lies within the radius of the path, as
 * relscope.engine.designer.flipping.stroke_mask), the change of a class's score, and the
 * scaling of flipping curves into an SVG path.
 */

import type { Prediction } from "./api";

/** A point in input pixels: `[row, column]`; pixel (r, c) has its centre at (r, c). */
export type Point = [number, number];

export interface Stroke {
  points: Point[];
  radius: number;
}

/** The most points a stroke may have and the most strokes (the server's limits). */
export const MAX_POINTS = 4096;
export const MAX_STROKES = 256;

/** The zoom (canvas pixels per input pixel) that shows `height` x `width` in about `fit` pixels. */
export function fitZoom(height: number, width: number, fit = 256, min = 1, max = 64): number {
  return Math.max(min, Math.min(max, Math.floor(fit / Math.max(1, height, width))));
}

/** A canvas position (in the canvas's own pixels) as input `[row, column]` at `zoom`. */
export function canvasToInput(x: number, y: number, zoom: number): Point {
  return [y / zoom - 0.5, x / zoom - 0.5];
}

/** An input `[row, column]` as a canvas position `[x, y]` at `zoom` (a pixel's centre for integers). */
export function inputToCanvas(point: Point, zoom: number): [number, number] {
  return [(point[1] + 0.5) * zoom, (point[0] + 0.5) * zoom];
}

/** A pointer event's position relative to an element box, in the canvas's own pixels
 * (the element may be shown at another size than its backing store). */
export function eventToCanvas(
  clientX: number,
  clientY: number,
  box: { left: number; top: number; width: number; height: number },
  canvas: { width: number; height: number },
): [number, number] {
  const sx = box.width ? canvas.width / box.width : 1;
  const sy = box.height ? canvas.height / box.height : 1;
  return [(clientX - box.left) * sx, (clientY - box.top) * sy];
}

const round = (value: number) => Math.round(value * 100) / 100;

/** Clamp a point into the input (half a pixel beyond the border still counts) and round it. */
export function clampPoint(point: Point, height: number, width: number): Point {
  const bound = (v: number, n: number) => round(Math.max(-0.5, Math.min(n - 0.5, v)));
  return [bound(point[0], height), bound(point[1], width)];
}

/** `stroke` with `point` appended unless it lies within `minStep` input pixels of the last
 * point (or the stroke is full); returns whether it was added. */
export function extendStroke(stroke: Stroke, point: Point, minStep = 0.25): boolean {
  const last = stroke.points[stroke.points.length - 1];
  if (stroke.points.length >= MAX_POINTS) return false;
  if (last && Math.hypot(point[0] - last[0], point[1] - last[1]) < minStep) return false;
  stroke.points.push(point);
  return true;
}

/** The pixels `strokes` cover, row-major booleans of `height` x `width` (the server's rule). */
export function strokeMask(strokes: Stroke[], height: number, width: number): Uint8Array {
  const covered = new Uint8Array(height * width);
  for (const stroke of strokes) {
    const pts = stroke.points.length > 1 ? stroke.points : [stroke.points[0], stroke.points[0]];
    const r = stroke.radius;
    for (let i = 0; i + 1 < pts.length; i++) {
      const [r0, c0] = pts[i];
      const [r1, c1] = pts[i + 1];
      const dr = r1 - r0;
      const dc = c1 - c0;
      const length = dr * dr + dc * dc;
      const top = Math.max(0, Math.floor(Math.min(r0, r1) - r));
      const bottom = Math.min(height - 1, Math.ceil(Math.max(r0, r1) + r));
      const left = Math.max(0, Math.floor(Math.min(c0, c1) - r));
      const right = Math.min(width - 1, Math.ceil(Math.max(c0, c1) + r));
      for (let row = top; row <= bottom; row++) {
        for (let col = left; col <= right; col++) {
          const along = length ? ((row - r0) * dr + (col - c0) * dc) / length : 0;
          const t = Math.max(0, Math.min(1, along));
          if (Math.hypot(row - (r0 + t * dr), col - (c0 + t * dc)) <= r) covered[row * width + col] = 1;
        }
      }
    }
  }
  return covered;
}

export const countCovered = (mask: Uint8Array) => mask.reduce((n, v) => n + v, 0);

/** The class whose score change a flip row reports: the explained class, or for "predicted"
 * the unflipped input's top class. */
export function targetClass(target: string, index: number | null, before: Prediction[]): number | null {
  if (target !== "predicted" && index !== null) return index;
  return before[0]?.index ?? null;
}

/** The score of class `index` in `predictions` (null: not among them, or not finite). */
export function scoreOf(predictions: Prediction[], index: number | null): number | null {
  if (index === null) return null;
  return predictions.find((p) => p.index === index)?.score ?? null;
}

/** A curve as an SVG path in a `width` x `height` box (fraction 0..1 left to right, `low`..`high`
 * bottom to top); a missing (non-finite) value breaks the line, the next point starts anew. */
export function curvePath(
  fractions: number[],
  scores: (number | null)[],
  box: { x: number; y: number; width: number; height: number },
  low: number,
  high: number,
): string {
  const span = high - low || 1;
  const parts: string[] = [];
  let pen = "M";
  fractions.forEach((f, i) => {
    const s = scores[i];
    if (s === null || s === undefined || !Number.isFinite(s)) {
      pen = "M";
      return;
    }
    const x = box.x + f * box.width;
    const y = box.y + box.height - ((s - low) / span) * box.height;
    parts.push(`${pen}${round(x)} ${round(y)}`);
    pen = "L";
  });
  return parts.join(" ");
}

/** The lowest and highest finite value of `series` (a flat or empty range is widened). */
export function valueRange(series: (number | null)[][]): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (const values of series) {
    for (const v of values) {
      if (v === null || !Number.isFinite(v)) continue;
      low = Math.min(low, v);
      high = Math.max(high, v);
    }
  }
  if (low > high) return [0, 1];
  if (low === high) return [low - 0.5, high + 0.5];
  return [low, high];
}
