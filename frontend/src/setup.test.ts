import { describe, expect, it } from "vitest";
import type { CategoryRow } from "./api";
import { categoryName, cleared, clusterName, rankingCells } from "./setup";

const row = (change: Partial<CategoryRow> = {}): CategoryRow => ({
  name: "00000003",
  label_index: 3,
  label_name: "tench",
  size: 40,
  scores: { tau: 0.12345, eigengap: null },
  ...change,
});

describe("setup panel", () => {
  it("names categories by class name and key", () => {
    expect(categoryName(row())).toBe("tench (00000003)");
    expect(categoryName(row({ label_name: null }))).toBe("00000003");
  });

  it("fills ranking rows, a dash for missing scores", () => {
    expect(rankingCells(row(), 0)).toEqual(["1", "tench (00000003)", "40", "0.123", "–"]);
    expect(rankingCells(row({ scores: { eigengap: 2 } }), 4)).toEqual(["5", "tench (00000003)", "40", "–", "2.000"]);
  });

  it("names clusters and noise", () => {
    expect(clusterName(2)).toBe("cluster 2");
    expect(clusterName(0)).toBe("cluster 0");
    expect(clusterName(-1)).toBe("noise");
  });

  it("clears what depends on the category, a fresh selection each time", () => {
    const first = cleared();
    expect({ ...first, selection: Array.from(first.selection!) }).toEqual({
      embedding: "",
      clustering: "",
      dims: [0, 1],
      selection: [],
      page: 0,
    });
    expect(cleared().selection).not.toBe(first.selection);
  });
});
