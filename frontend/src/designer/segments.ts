/**
 * Configurations as the page edits them: segments that cover every layer of the model, in
 * order, without gaps. Every operation here returns new arrays and keeps that coverage.
 *
 * The server's JSON (relscope.attribution.config) allows `stop: null` (to the end) and
 * ranges with gaps; `normalize` turns such a configuration into covering segments (a gap goes
 * to the segment before it), `toJson` writes the last segment's stop as null.
 */

export type Params = Record<string, number | boolean | number[]>;

export interface Segment {
  start: number;
  stop: number; // exclusive; the last segment's stop is the layer count
  rule: string;
  params: Params;
}

export interface Config {
  name: string;
  segments: Segment[];
}

export interface ConfigJson {
  name: string;
  segments: { start: number; stop: number | null; rule: string; params: Params }[];
}

const copy = (segment: Segment): Segment => ({ ...segment, params: { ...segment.params } });

/** Whether `segments` cover 0..layers-1 exactly, in order, none empty. */
export function covers(segments: Segment[], layers: number): boolean {
  if (!segments.length || segments[0].start !== 0 || segments[segments.length - 1].stop !== layers) return false;
  return segments.every((s, i) => s.stop > s.start && (i === 0 || s.start === segments[i - 1].stop));
}

/** Covering segments from the server's JSON (sorted; gaps to the segment before; clipped). */
export function normalize(config: ConfigJson, layers: number, fallback = "epsilon"): Config {
  const parts = [...config.segments]
    .map((s) => ({ start: s.start, stop: s.stop ?? layers, rule: s.rule, params: { ...(s.params ?? {}) } }))
    .filter((s) => s.start < layers)
    .sort((a, b) => a.start - b.start);
  const segments: Segment[] = [];
  for (const part of parts) {
    const last = segments[segments.length - 1];
    const start = last ? last.stop : 0;
    const stop = Math.min(layers, Math.max(part.stop, start));
    if (stop <= start) continue;
    if (last && part.start > last.stop) last.stop = part.start; // a gap: the one before takes it
    segments.push({ ...part, start: last ? last.stop : 0, stop });
  }
  if (!segments.length) segments.push({ start: 0, stop: layers, rule: fallback, params: {} });
  segments[segments.length - 1].stop = layers;
  return { name: config.name, segments };
}

/** The server's JSON: the last segment runs to the end (`stop: null`). */
export function toJson(config: Config): ConfigJson {
  return {
    name: config.name,
    segments: config.segments.map((s, i) => ({
      start: s.start,
      stop: i === config.segments.length - 1 ? null : s.stop,
      rule: s.rule,
      params: { ...s.params },
    })),
  };
}

/** The position of the segment holding `layer`. */
export function segmentOf(segments: Segment[], layer: number): number {
  return Math.max(0, segments.findIndex((s) => s.start <= layer && layer < s.stop));
}

/** Boundaries: the layer index where each segment after the first starts. */
export const boundaries = (segments: Segment[]) => segments.slice(1).map((s) => s.start);

/** Split the segment holding `at` so that a new segment starts at layer `at` (same rule). */
export function split(segments: Segment[], at: number): Segment[] {
  const i = segments.findIndex((s) => s.start < at && at < s.stop);
  if (i < 0) return segments.map(copy);
  const out = segments.map(copy);
  const right = { ...copy(out[i]), start: at };
  out[i].stop = at;
  out.splice(i + 1, 0, right);
  return out;
}

/** Move boundary `b` (the start of segment b+1) to layer `to`, kept inside its neighbours. */
export function moveBoundary(segments: Segment[], b: number, to: number): Segment[] {
  const out = segments.map(copy);
  if (b < 0 || b + 1 >= out.length) return out;
  const position = Math.min(out[b + 1].stop - 1, Math.max(out[b].start + 1, Math.round(to)));
  out[b].stop = position;
  out[b + 1].start = position;
  return out;
}

/** Remove boundary `b`: segment b takes over segment b+1's layers (and keeps its rule). */
export function merge(segments: Segment[], b: number): Segment[] {
  const out = segments.map(copy);
  if (b < 0 || b + 1 >= out.length) return out;
  out[b].stop = out[b + 1].stop;
  out.splice(b + 1, 1);
  return out;
}

/** Replace segment `i`'s rule and parameters. */
export function setRule(segments: Segment[], i: number, rule: string, params: Params): Segment[] {
  return segments.map((s, j) => (j === i ? { ...s, rule, params: { ...params } } : copy(s)));
}
