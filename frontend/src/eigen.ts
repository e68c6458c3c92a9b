/**
 * The eigenvalue plot: the spectrum stored with the shown embedding (or its base, or any
 * embedding of the category) as an SVG scatter with the eigengap marked.
 */

import type { EmbeddingInfo } from "./api";
import { eigengapK } from "./geometry";

export const NO_EIGENVALUES = '<text x="120" y="60" text-anchor="middle" font-size="11">no eigenvalues stored</text>';

/** The ascending eigenvalues to plot for `embedding` (empty when none are stored). */
export function spectrum(embeddings: EmbeddingInfo[], embedding: string): number[] {
  const chosen = embeddings.find((e) => e.name === embedding);
  const source =
    [chosen, embeddings.find((e) => e.name === chosen?.base)].find((e) => e?.eigenvalues) ??
    embeddings.find((e) => e.eigenvalues);
  return (source?.eigenvalues ?? []).filter((v): v is number => v !== null).sort((a, b) => a - b);
}

/** The eigengap k and the SVG markup (240 x 120) of ascending `values`; null under two values. */
export function eigenPlot(values: number[]): { k: number; markup: string } | null {
  if (values.length < 2) return null;
  const k = eigengapK(values);
  const [w, h, m] = [240, 120, 18];
  const low = Math.min(0, values[0]);
  const high = Math.max(values[values.length - 1], low + 1e-12);
  const x = (i: number) => m + ((w - 2 * m) * i) / (values.length - 1);
  const y = (v: number) => h - m - ((h - 2 * m) * (v - low)) / (high - low);
  const gapX = (x(k - 1) + x(k)) / 2;
  const circles = values
    .map((v, i) => `<circle cx="${x(i)}" cy="${y(v)}" r="2.5" fill="#2d6cdf"><title>λ${i + 1} = ${v.toPrecision(4)}</title></circle>`)
    .join("");
  const line = values.map((v, i) => `${x(i)},${y(v)}`).join(" ");
  const markup =
    `<line x1="${m}" y1="${h - m}" x2="${w - m}" y2="${h - m}" stroke="#99a"/>` +
    `<line class="eigengap" x1="${gapX}" y1="${m / 2}" x2="${gapX}" y2="${h - m}" stroke="#c62828" stroke-dasharray="4 3"/>` +
    `<text x="${gapX > w / 2 ? gapX - 4 : gapX + 4}" y="${m}" font-size="10" fill="#c62828" text-anchor="${gapX > w / 2 ? "end" : "start"}">eigengap: k = ${k}</text>` +
    `<polyline points="${line}" fill="none" stroke="#8aa6d6"/>` +
    circles +
    `<text x="${m}" y="${h - 4}" font-size="9">1</text><text x="${w - m}" y="${h - 4}" font-size="9" text-anchor="end">${values.length}</text>`;
  return { k, markup };
}
