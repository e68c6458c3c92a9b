import { describe, expect, it } from "vitest";
import {
  addColumns,
  chosenRows,
  classColumns,
  column,
  columnKey,
  columnTitle,
  compareBody,
  fits,
  removeColumn,
  topClasses,
} from "./comparegrid";
import type { ConfigJson } from "./segments";

describe("compare grid columns", () => {
  it("adds columns, leaves repeats out and says why", () => {
    const a = column({ sample: 3 });
    const b = column({ sample: 0 }, "class", 2);
    let { columns, skipped } = addColumns([], [a, b], 2);
    expect(columns).toEqual([a, b]);
    expect(skipped).toBeNull();
    ({ columns, skipped } = addColumns(columns, [column({ sample: 3 }, "predicted", 7)], 2));
    expect(columns).toHaveLength(2); // "predicted" drops the class: the same column as a
    expect(skipped).toBe("sample 3 · predicted: already a column");
    expect(addColumns(columns, [column({ sample: 0 }, "contrastive", 2)], 2).columns).toHaveLength(3);
  });
  it("keeps the server's limits: 16 columns, 64 cells", () => {
    const many = Array.from({ length: 20 }, (_, i) => column({ sample: i }));
    const one = addColumns([], many, 1);
    expect(one.columns).toHaveLength(16);
    expect(one.skipped).toMatch(/at most 16 columns and 64 cells/);
    expect(addColumns([], many, 5).columns).toHaveLength(12); // 5 x 12 = 60 <= 64 < 65
    expect(addColumns([], many, 0).columns).toHaveLength(16); // no rows yet: counted as one
    expect([fits(16, 4), fits(17, 1), fits(8, 9), fits(4, 16)]).toEqual([true, false, false, true]);
  });
  it("removes a column by position and makes class columns of the top classes", () => {
    const columns = classColumns({ upload: "0123456789abcdef01234567" }, topClasses([{ index: 4 }, { index: 1 }, { index: 9 }, { index: 0 }], 3));
    expect(columns.map((c) => [c.target, c.index])).toEqual([["class", 4], ["class", 1], ["class", 9]]);
    expect(removeColumn(columns, 1).map((c) => c.index)).toEqual([4, 9]);
    expect(removeColumn(columns, 5)).toEqual(columns);
    expect(columnTitle(columns[0])).toBe("upload 01234567… · class 4");
    expect(columnKey(columns[0])).not.toBe(columnKey(columns[1]));
  });
  it("copies the input, not a reference to the page's", () => {
    const input = { sample: 2 };
    const c = column(input);
    input.sample = 5;
    expect(c.input).toEqual({ sample: 2 });
  });
});

describe("compare request", () => {
  it("sends every chosen configuration inline, in the page's order", () => {
    const names = ["a", "b", "c", "d"];
    expect(chosenRows(names, new Set(["d", "b", "gone"]))).toEqual([1, 3]);
    const config = (name: string): ConfigJson => ({ name, segments: [{ start: 0, stop: null, rule: "epsilon", params: { eps: 0.25 } }] });
    const body = compareBody([config("b"), config("d")], [column({ sample: 3 }), column({ sample: 0 }, "class", 2)]);
    expect(body).toEqual({
      configs: [config("b"), config("d")],
      columns: [
        { input: { sample: 3 }, target: "predicted", index: null },
        { input: { sample: 0 }, target: "class", index: 2 },
      ],
      cmap: "bwr",
    });
    expect(JSON.parse(JSON.stringify(body))).toEqual(body);
  });
});
