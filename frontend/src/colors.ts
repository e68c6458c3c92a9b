/** Categorical colours for clusters (noise, label < 0, is gray). */

const CLUSTER_COLOURS = [
  "1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "17becf", "bcbd22", "7f7f7f",
  "aec7e8", "ffbb78", "98df8a", "ff9896", "c5b0d5", "c49c94", "f7b6d2", "9edae5", "dbdb8d", "393b79",
];

export function clusterColour(label: number): [number, number, number] {
  if (label < 0) return [170, 170, 170];
  const hex = CLUSTER_COLOURS[label % CLUSTER_COLOURS.length];
  return [parseInt(hex.slice(0, 2), 16), parseInt(hex.slice(2, 4), 16), parseInt(hex.slice(4, 6), 16)];
}

export const cssColour = (label: number) => `rgb(${clusterColour(label).join(",")})`;

/** RGB bytes (3 per point) of cluster labels. */
export function pointColours(labels: Int32Array | null, count: number): Uint8Array {
  const out = new Uint8Array(count * 3);
  for (let p = 0; p < count; p++) out.set(clusterColour(labels ? labels[p] : 0), 3 * p);
  return out;
}
