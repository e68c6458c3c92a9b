import { describe, expect, it } from "vitest";
import { combine, combineFor, eigengapK, insidePolygon, pointsInBox, pointsInPolygon, positionsOf } from "./geometry";

describe("geometry", () => {
  it("tests points against a concave polygon (an L shape)", () => {
    const l = [0, 0, 2, 0, 2, 1, 1, 1, 1, 2, 0, 2];
    expect(insidePolygon(0.5, 0.5, l)).toBe(true);
    expect(insidePolygon(1.5, 0.5, l)).toBe(true);
    expect(insidePolygon(0.5, 1.5, l)).toBe(true);
    expect(insidePolygon(1.5, 1.5, l)).toBe(false);
    expect(insidePolygon(-0.1, 0.5, l)).toBe(false);
  });

  it("selects points in polygons and boxes", () => {
    const points = [0.5, 0.5, 1.5, 1.5, 0.5, 1.5, 5, 5];
    const l = [0, 0, 2, 0, 2, 1, 1, 1, 1, 2, 0, 2];
    expect(Array.from(pointsInPolygon(points, l))).toEqual([0, 2]);
    expect(Array.from(pointsInBox(points, 2, 2, 0, 0))).toEqual([0, 1, 2]);
    expect(Array.from(pointsInBox(points, 4, 4, 6, 6))).toEqual([3]);
  });

  it("combines selections", () => {
    const a = Int32Array.from([1, 3, 5]);
    const b = Int32Array.from([3, 4]);
    expect(Array.from(combine(a, b, "replace"))).toEqual([3, 4]);
    expect(Array.from(combine(a, b, "add"))).toEqual([1, 3, 4, 5]);
    expect(Array.from(combine(a, b, "remove"))).toEqual([1, 5]);
  });

  it("reads modifier keys", () => {
    const none = { shiftKey: false, altKey: false, ctrlKey: false, metaKey: false };
    expect(combineFor(none)).toBe("replace");
    expect(combineFor({ ...none, shiftKey: true })).toBe("add");
    expect(combineFor({ ...none, altKey: true })).toBe("remove");
    expect(combineFor({ ...none, ctrlKey: true, shiftKey: true })).toBe("remove");
  });

  it("finds the eigengap like relscope.analysis.scores.eigengap", () => {
    expect(eigengapK([0.0, 0.0, 0.0, 0.5, 0.75])).toBe(3);
    expect(eigengapK([0.75, 0.0, 0.5])).toBe(1);
  });

  it("selects a cluster's points", () => {
    expect(Array.from(positionsOf(Int32Array.from([1, 0, 1, -1, 1]), 1))).toEqual([0, 2, 4]);
    expect(Array.from(positionsOf([1, 0, 1, -1], -1))).toEqual([3]);
    expect(Array.from(positionsOf([1, 0], 7))).toEqual([]);
  });
});
