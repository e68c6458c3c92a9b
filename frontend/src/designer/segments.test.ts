import { describe, expect, it } from "vitest";
import { covers, merge, moveBoundary, normalize, split, toJson, type Segment } from "./segments";

const one: Segment[] = [{ start: 0, stop: 9, rule: "epsilon", params: { eps: 0.25 } }];

describe("segment operations keep full coverage", () => {
  it("split, move and merge", () => {
    let s = split(one, 3);
    expect(covers(s, 9)).toBe(true);
    expect(s.map((x) => [x.start, x.stop])).toEqual([[0, 3], [3, 9]]);
    s = split(s, 6);
    s = moveBoundary(s, 0, 100); // clamped inside its neighbours
    expect(s.map((x) => [x.start, x.stop])).toEqual([[0, 5], [5, 6], [6, 9]]);
    s = moveBoundary(s, 1, -4);
    expect(s.map((x) => [x.start, x.stop])).toEqual([[0, 5], [5, 6], [6, 9]].map(([a, b], i) => (i === 1 ? [5, 6] : [a, b])));
    expect(covers(s, 9)).toBe(true);
    s = merge(s, 0);
    expect(s.map((x) => [x.start, x.stop])).toEqual([[0, 6], [6, 9]]);
    expect(covers(s, 9)).toBe(true);
    expect(split(s, 0)).toEqual(s); // no empty segment
    expect(one[0].stop).toBe(9); // inputs untouched
  });
  it("random edits never leave a gap", () => {
    let s = one;
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let i = 0; i < 500; i++) {
      const op = rand(3);
      if (op === 0) s = split(s, rand(10));
      else if (op === 1) s = moveBoundary(s, rand(s.length), rand(10));
      else s = merge(s, rand(s.length));
      expect(covers(s, 9)).toBe(true);
    }
  });
  it("normalizes the server's JSON and writes the last stop as null", () => {
    const config = normalize({ name: "x", segments: [{ start: 2, stop: 4, rule: "gamma", params: {} }, { start: 0, stop: 1, rule: "zbox", params: {} }, { start: 5, stop: null, rule: "epsilon", params: {} }] }, 9);
    expect(config.segments.map((s) => [s.start, s.stop, s.rule])).toEqual([[0, 2, "zbox"], [2, 5, "gamma"], [5, 9, "epsilon"]]);
    expect(toJson(config).segments.map((s) => s.stop)).toEqual([2, 5, null]);
  });
});
