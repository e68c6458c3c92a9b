import { describe, expect, it } from "vitest";
import { emptyState, exportView, fromFragment, importView, toFragment } from "./state";

function sample() {
  const state = emptyState(1);
  Object.assign(state, {
    analysis: "spray",
    category: "00000003",
    embedding: "tsne",
    clustering: "kmeans-04",
    dims: [2, 3],
    cmap: "coldnhot",
    mode: "overlay",
    sampling: "pixelated",
    page: 2,
    selection: Int32Array.from([1, 5, 9]),
  });
  return state;
}

describe("view state", () => {
  it("round-trips through the URL fragment", async () => {
    const state = sample();
    const fragment = await toFragment(state, 20);
    expect(fragment).toContain("a=spray");
    const back = await fromFragment("#" + fragment, async () => 20);
    expect({ ...back, selection: Array.from(back.selection) }).toEqual({
      ...state,
      selection: [1, 5, 9],
    });
  });

  it("refuses bad fragments with a message naming the field", async () => {
    await expect(fromFragment("m=bogus", async () => 1)).rejects.toThrow(/mode must be one of/);
    await expect(fromFragment("p=-1", async () => 1)).rejects.toThrow(/project/);
    await expect(fromFragment("d=1", async () => 1)).rejects.toThrow(/dims/);
  });

  it("exports and imports the whole view", () => {
    const state = sample();
    const doc = exportView(state, "demo", [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
    expect(doc.selection.samples).toEqual([101, 105, 109]);
    const { state: back, projectName } = importView(JSON.parse(JSON.stringify(doc)));
    expect(projectName).toBe("demo");
    expect({ ...back, selection: Array.from(back.selection) }).toEqual({ ...state, selection: [1, 5, 9] });
  });

  it("refuses malformed view files", () => {
    expect(() => importView({})).toThrow(/relscope_view/);
    const doc = exportView(sample(), "demo", Array.from({ length: 10 }, (_, i) => i)) as any;
    expect(() => importView({ ...doc, mode: "x" })).toThrow(/mode/);
    expect(() => importView({ ...doc, selection: { positions: [1, -2] } })).toThrow(/positions\[1\]/);
    expect(() => importView({ ...doc, dims: [0] })).toThrow(/dims/);
  });
});
