import { describe, expect, it } from "vitest";
import type { CategoryDetail, CategoryRow, ProjectInfo } from "./api";
import { type Catalogue, notice, resolve } from "./resolve";
import { emptyState, type ViewState } from "./state";

const project = (id: number, name: string, analyses: string[]): ProjectInfo => ({
  id,
  name,
  model: "m",
  dataset: { name: "d", type: "hdf5", samples: 10 },
  attribution: null,
  analyses,
});
const row = (name: string): CategoryRow => ({ name, label_index: null, label_name: null, size: 10, scores: {} });
const detail = (name: string, embeddings: [string, number][], clusterings: string[]): CategoryDetail => ({
  name,
  size: 10,
  index: Array.from({ length: 10 }, (_, i) => 100 + i),
  scores: {},
  embeddings: embeddings.map(([e, dims]) => ({ name: e, dims, base: null, eigenvalues: null })),
  clusterings: clusterings.map((k) => ({ name: k, k: 2, clusters: [] })),
});

function catalogue(): Catalogue & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    projects: [project(0, "first", ["spray"]), project(1, "second", ["spray", "other"]), project(2, "empty", [])],
    async rankings(p, a) {
      asked.push(`rankings ${p} ${a}`);
      return a === "other" ? [] : [row("03"), row("07")];
    },
    async details(p, a, c) {
      asked.push(`details ${p} ${a} ${c}`);
      if (c === "07") return detail(c, [["pca", 1]], []);
      return detail(c, [["spectral", 8], ["tsne", 2]], ["kmeans-02", "kmeans-03"]);
    },
    hasColormap: (name) => name === "bwr" || name === "coldnhot",
  };
}

const view = (change: Partial<ViewState>): ViewState => ({ ...emptyState(1), ...change });

describe("resolve", () => {
  it("keeps a state the server can show, and leaves the wanted one alone", async () => {
    const wanted = view({
      analysis: "spray",
      category: "03",
      embedding: "spectral",
      clustering: "kmeans-03",
      dims: [4, 7],
      cmap: "coldnhot",
      selection: Int32Array.from([2, 9]),
    });
    const { state, notes } = await resolve(wanted, catalogue());
    expect(notes).toEqual([]);
    expect({ ...state, selection: Array.from(state.selection) }).toEqual({ ...wanted, selection: [2, 9] });
    expect(state).not.toBe(wanted);
  });

  it("fills in defaults for an empty state without notes, preferring a 2-D embedding", async () => {
    const source = catalogue();
    const { state, notes } = await resolve(emptyState(0), source);
    expect(notes).toEqual([]);
    expect(state).toMatchObject({ project: 0, analysis: "spray", category: "03", embedding: "tsne", clustering: "kmeans-02" });
    expect(source.asked).toEqual(["rankings 0 spray", "details 0 spray 03"]);
  });

  it("names each unknown name it replaces, after the notes given", async () => {
    const wanted = view({
      analysis: "nope",
      category: "99",
      embedding: "umap",
      clustering: "dbscan",
      cmap: "jet",
      selection: Int32Array.from([1, 2]),
    });
    const { state, notes } = await resolve(wanted, catalogue(), ["the link could not be read"]);
    expect(notes).toEqual([
      "the link could not be read",
      "no analysis nope",
      "no colour map jet",
    ]);
    // A changed analysis clears the category silently; its selection goes with it.
    expect(state).toMatchObject({ analysis: "spray", category: "03", embedding: "tsne", clustering: "kmeans-02", cmap: "bwr" });
    expect(Array.from(state.selection)).toEqual([]);
  });

  it("replaces unknown categories, embeddings and clusterings one by one", async () => {
    const unknownCategory = await resolve(view({ analysis: "spray", category: "99", selection: Int32Array.from([1]) }), catalogue());
    expect(unknownCategory.notes).toEqual(["no category 99"]);
    expect(Array.from(unknownCategory.state.selection)).toEqual([]);
    const { state, notes } = await resolve(
      view({ analysis: "spray", category: "03", embedding: "umap", clustering: "dbscan", dims: [3, 5] }),
      catalogue(),
    );
    expect(notes).toEqual(["no embedding umap", "no clustering dbscan"]);
    expect(state).toMatchObject({ embedding: "tsne", dims: [0, 1], clustering: "kmeans-02" });
  });

  it("falls back to project 0 and corrects dimensions and selections past the end", async () => {
    const { state, notes } = await resolve(
      { ...emptyState(5), analysis: "spray", category: "03", embedding: "tsne", dims: [0, 2], selection: Int32Array.from([3, 10, 12]) },
      catalogue(),
    );
    expect(notes).toEqual(["no project 5"]);
    expect(state.project).toBe(0);
    expect(Array.from(state.selection)).toEqual([]); // project 0's default state
    const past = view({ analysis: "spray", category: "03", embedding: "tsne", dims: [0, 2], selection: Int32Array.from([3, 10, 12]) });
    const kept = await resolve(past, catalogue());
    expect(kept.state.dims).toEqual([0, 1]);
    expect(Array.from(kept.state.selection)).toEqual([3]);
  });

  it("refuses what cannot be shown", async () => {
    await expect(resolve(emptyState(2), catalogue())).rejects.toThrow("project empty has no analysis to explore");
    await expect(resolve(view({ analysis: "other" }), catalogue())).rejects.toThrow("analysis other has no categories");
    await expect(resolve(view({ analysis: "spray", category: "07" }), catalogue())).rejects.toThrow(
      "category 07 has no embedding with two dimensions",
    );
  });

  it("words the notice", () => {
    expect(notice([])).toBe("");
    expect(notice(["no project 5", "no colour map jet"])).toBe("Shown instead of what was asked: no project 5; no colour map jet.");
  });
});
