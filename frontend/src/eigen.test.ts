import { describe, expect, it } from "vitest";
import type { EmbeddingInfo } from "./api";
import { eigenPlot, spectrum } from "./eigen";

const embedding = (name: string, eigenvalues: (number | null)[] | null, base: string | null = null): EmbeddingInfo => ({
  name,
  dims: 2,
  base,
  eigenvalues,
});

describe("eigenvalue plot", () => {
  const spectral = embedding("spectral", [0.5, 0, null, 0.25]);
  const other = embedding("other-spectral", [0.9, 0.1]);
  const tsne = embedding("tsne", null, "spectral");
  const pca = embedding("pca", null);

  it("plots the shown embedding's spectrum, ascending, without missing values", () => {
    expect(spectrum([other, spectral, tsne], "spectral")).toEqual([0, 0.25, 0.5]);
  });

  it("falls back to the embedding's base, then to any stored spectrum", () => {
    expect(spectrum([other, spectral, tsne], "tsne")).toEqual([0, 0.25, 0.5]);
    expect(spectrum([other, spectral, pca], "pca")).toEqual([0.1, 0.9]);
    expect(spectrum([other, spectral], "no such embedding")).toEqual([0.1, 0.9]);
    expect(spectrum([pca, tsne], "tsne")).toEqual([]);
  });

  it("marks the eigengap", () => {
    const plot = eigenPlot([0, 0, 0, 0.5, 0.75])!;
    expect(plot.k).toBe(3);
    expect(plot.markup).toContain("eigengap: k = 3");
    expect(plot.markup.match(/<circle /g)).toHaveLength(5);
    expect(plot.markup).toContain("<title>λ4 = 0.5000</title>");
    // The gap line sits between the third and fourth values (x = 18 + 204 * i / 4).
    expect(plot.markup).toContain('<line class="eigengap" x1="145.5"');
  });

  it("draws nothing under two values", () => {
    expect(eigenPlot([])).toBeNull();
    expect(eigenPlot([0.3])).toBeNull();
  });
});
