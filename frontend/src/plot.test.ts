import { describe, expect, it } from "vitest";
import { hoverCaption, keyCommand, plotKeys } from "./plot";
import { emptyState } from "./state";

describe("embedding map", () => {
  const keys = { ctrlKey: false, metaKey: false, altKey: false };

  it("reads keys", () => {
    expect(keyCommand({ ...keys, key: "p" })).toBe("pan");
    expect(keyCommand({ ...keys, key: "B" })).toBe("box");
    expect(keyCommand({ ...keys, key: "l" })).toBe("lasso");
    expect(keyCommand({ ...keys, key: "F" })).toBe("fit");
    expect(keyCommand({ ...keys, key: "Escape" })).toBe("clear");
    expect(keyCommand({ ...keys, key: "x" })).toBeNull();
    expect(keyCommand({ ...keys, key: "constructor" })).toBeNull();
    expect(keyCommand({ ...keys, key: "l", ctrlKey: true })).toBeNull();
    expect(keyCommand({ ...keys, key: "Escape", altKey: true })).toBeNull();
    expect(keyCommand({ ...keys, key: "f", metaKey: true })).toBeNull();
  });

  it("keeps the points of a view whose clustering changes, and redraws them for new dimensions", () => {
    const state = { ...emptyState(1), analysis: "spray", category: "03", embedding: "tsne", clustering: "k2" };
    const base = plotKeys(state);
    const recoloured = plotKeys({ ...state, clustering: "k3", selection: Int32Array.from([1]), cmap: "gray" });
    expect(recoloured.points).toBe(base.points);
    expect(recoloured.colours).not.toBe(base.colours);
    const moved = plotKeys({ ...state, dims: [1, 0] });
    expect(moved.points).not.toBe(base.points);
    expect(moved.colours).toBe(base.colours);
    expect(plotKeys({ ...state, category: "04" }).colours).not.toBe(base.colours);
  });

  it("captions hovered samples, then with their labels", () => {
    expect(hoverCaption(17, null)).toBe("#17");
    expect(hoverCaption(17, 2)).toBe("#17 · cluster 2");
    const info = {
      index: 17,
      labels: [
        { index: 0, name: "tench" },
        { index: 4, name: "goldfish" },
      ],
      prediction: [{ index: 4, name: "goldfish", score: 0.9 }],
    };
    expect(hoverCaption(17, -1, info)).toBe("#17 tench, goldfish → goldfish · cluster -1");
    expect(hoverCaption(17, null, { ...info, prediction: null })).toBe("#17 tench, goldfish");
  });
});
