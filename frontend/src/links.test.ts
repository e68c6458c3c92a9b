import { describe, expect, it } from "vitest";
import { checkImport, readLink } from "./links";
import { emptyState, toFragment } from "./state";

describe("links", () => {
  it("reads a link's state, asking the category size for its selection", async () => {
    const state = { ...emptyState(1), analysis: "spray", category: "03", selection: Int32Array.from([2, 7]) };
    const fragment = "#" + (await toFragment(state, 10));
    const asked: string[] = [];
    const { state: back, notes } = await readLink(fragment, async (s) => {
      asked.push(`${s.project} ${s.analysis} ${s.category}`);
      return 10;
    });
    expect(notes).toEqual([]);
    expect(asked).toEqual(["1 spray 03"]);
    expect(back).toMatchObject({ project: 1, analysis: "spray", category: "03" });
    expect(Array.from(back.selection)).toEqual([2, 7]);
  });

  it("falls back to the defaults for an empty or broken link, noting a broken one", async () => {
    const size = async () => 10;
    expect(await readLink("", size)).toEqual({ state: emptyState(0), notes: [] });
    expect(await readLink("#", size)).toEqual({ state: emptyState(0), notes: [] });
    const broken = await readLink("#m=bogus", size);
    expect(broken.state).toEqual(emptyState(0));
    expect(broken.notes).toHaveLength(1);
    expect(broken.notes[0]).toMatch(/^the link could not be read \(mode must be one of/);
    const failing = await readLink("#p=0&sel=abc", async () => {
      throw new Error("404 no category");
    });
    expect(failing.notes).toEqual(["the link could not be read (404 no category)"]);
  });

  it("refuses imported views of other projects or past their category", async () => {
    const projects = [{ name: "first" }, { name: "second" }];
    const state = { ...emptyState(1), selection: Int32Array.from([3, 9]) };
    const size = async () => 10;
    await expect(checkImport(state, "second", projects, size)).resolves.toBeUndefined();
    await expect(checkImport(state, "first", projects, size)).rejects.toThrow(
      'the file is a view of project "first", which this server does not have at position 1',
    );
    await expect(checkImport({ ...state, project: 4 }, "second", projects, size)).rejects.toThrow(/at position 4/);
    await expect(checkImport(state, "second", projects, async () => 9)).rejects.toThrow(
      "the selection names position 9 of a category of 9",
    );
    await expect(checkImport({ ...state, selection: new Int32Array(0) }, "second", projects, async () => 0)).resolves.toBeUndefined();
  });
});
