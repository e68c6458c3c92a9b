/** Categorical colours for clusters (noise, label < 0, is gray). */

const CLUSTER_COLOURS = [
  "1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "17becf", "bcbd22", "7f7f7f",
  "aec7e8", "ffbb78", "98df8a", "ff9896", "c5b0d5", "c49c94", "f7b6d2", "9edae5", "dbdb8d", "393b79",
];

const TABLE = Uint8Array.from(
  CLUSTER_COLOURS.flatMap((hex) => [0, 2, 4].map((at) => parseInt(hex.slice(at, at + 2), 16))),
);
const NOISE: [number, number, number] = [170, 170, 170];

export function clusterColour(label: number): [number, number, number] {
  if (label < 0) return NOISE;
  const at = 3 * (label % CLUSTER_COLOURS.length);
  return [TABLE[at], TABLE[at + 1], TABLE[at + 2]];
}

export const cssColour = (label: number) => `rgb(${clusterColour(label).join(",")})`;

/** RGB bytes (3 per point) of cluster labels. */
export function pointColours(labels: Int32Array | null, count: number): Uint8Array {
  const out = new Uint8Array(count * 3);
  const colours = CLUSTER_COLOURS.length;
  for (let p = 0; p < count; p++) {
    const label = labels ? labels[p] : 0;
    if (label < 0) {
      out.set(NOISE, 3 * p);
      continue;
    }
    const at = 3 * (label % colours);
    out[3 * p] = TABLE[at];
    out[3 * p + 1] = TABLE[at + 1];
    out[3 * p + 2] = TABLE[at + 2];
  }
  return out;
}
