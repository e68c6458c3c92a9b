import { describe, expect, it } from "vitest";
import {
  axisMax,
  boxSelection,
  bwr,
  clickSelection,
  linearScale,
  matrixPixels,
  nearestPoint,
  niceTicks,
  pointsInBox,
  rowAt,
  scatterPoints,
  sequential,
  symmetricLimit,
} from "./neuronplot";

describe("scales", () => {
  it("maps the domain onto the range and back, also reversed", () => {
    const y = linearScale([0, 10], [200, 0]);
    expect(y(0)).toBe(200);
    expect(y(10)).toBe(0);
    expect(y(2.5)).toBe(150);
    expect(y.invert(150)).toBe(2.5);
  });
  it("widens an empty domain", () => {
    const x = linearScale([0, 0], [0, 100]);
    expect(x(0)).toBe(0);
    expect(x(1)).toBe(100);
    expect(Number.isFinite(linearScale([3, 3], [0, 1])(3))).toBe(true);
  });
  it("has round ticks inside the domain", () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 0.023, 4)).toEqual([0, 0.01, 0.02]);
    expect(niceTicks(0, 0.012, 4)).toEqual([0, 0.005, 0.01]);
    expect(niceTicks(-3, 7, 2)).toEqual([0, 5]);
  });
  it("puts a point per channel at positive and |negative| relevance", () => {
    const x = linearScale([0, axisMax([0.5, 1])], [0, 105]);
    const y = linearScale([0, axisMax([-2, null])], [210, 0]);
    const points = scatterPoints([0.5, 1, null], [-2, 0, null], x, y);
    expect(points.map((p) => p.channel)).toEqual([0, 1, 2]);
    expect(points[1].x).toBeCloseTo(100);
    expect(points[0].y).toBeCloseTo(10);
    expect(points[2]).toEqual({ channel: 2, x: 0, y: 210 });
    expect(axisMax([0, null])).toBe(1);
  });
});

describe("selection", () => {
  const points = [
    { channel: 0, x: 10, y: 10 },
    { channel: 1, x: 50, y: 50 },
    { channel: 2, x: 90, y: 20 },
  ];
  it("hit-tests a box with its corners in any order, edges included", () => {
    expect(pointsInBox(points, { x0: 0, y0: 0, x1: 50, y1: 50 })).toEqual([0, 1]);
    expect(pointsInBox(points, { x0: 100, y0: 60, x1: 40, y1: 15 })).toEqual([1, 2]);
    expect(pointsInBox(points, { x0: 11, y0: 11, x1: 49, y1: 49 })).toEqual([]);
  });
  it("finds the nearest point within a radius", () => {
    expect(nearestPoint(points, 52, 47, 8)).toBe(1);
    expect(nearestPoint(points, 70, 35, 8)).toBeNull();
    expect(nearestPoint([...points, { channel: 3, x: 51, y: 49 }], 52, 48, 8)).toBe(3);
  });
  it("replaces or adds with a box, selects or toggles with a click", () => {
    expect([...boxSelection(new Set([0]), [1, 2], false)]).toEqual([1, 2]);
    expect([...boxSelection(new Set([0]), [1, 0], true)].sort()).toEqual([0, 1]);
    expect([...clickSelection(new Set([0, 1]), 2, false)]).toEqual([2]);
    expect([...clickSelection(new Set([2]), 2, false)]).toEqual([]);
    expect([...clickSelection(new Set([0, 1]), 1, true)]).toEqual([0]);
    expect([...clickSelection(new Set([0]), 3, true)]).toEqual([0, 3]);
  });
});

describe("matrix image", () => {
  it("maps rows to channels on a symmetric blue-white-red scale", () => {
    const matrix = [
      [2, -1],
      [0, null],
      [-2, 1],
    ];
    expect(symmetricLimit(matrix)).toBe(2);
    const image = matrixPixels(matrix);
    expect([image.width, image.height]).toEqual([2, 3]);
    const pixel = (r: number, c: number) => Array.from(image.data.slice((r * 2 + c) * 4, (r * 2 + c) * 4 + 4));
    expect(pixel(0, 0)).toEqual([255, 0, 0, 255]); // +limit: red
    expect(pixel(2, 0)).toEqual([0, 0, 255, 255]); // -limit: blue
    expect(pixel(1, 0)).toEqual([255, 255, 255, 255]); // 0: white
    expect(pixel(0, 1)).toEqual([128, 128, 255, 255]); // -limit/2: light blue
    expect(pixel(1, 1)).toEqual([160, 160, 160, 255]); // not finite: grey
    expect(symmetricLimit([[0, null]])).toBe(1);
  });
  it("finds the row under the pointer", () => {
    expect(rowAt(0, 60, 6)).toBe(0);
    expect(rowAt(59.9, 60, 6)).toBe(5);
    expect(rowAt(25, 60, 6)).toBe(2);
    expect(rowAt(60, 60, 6)).toBeNull();
    expect(rowAt(-1, 60, 6)).toBeNull();
  });
  it("has colour scales clamped at their ends", () => {
    expect(bwr(5)).toEqual([255, 0, 0]);
    expect(bwr(Number.NaN)).toEqual([255, 255, 255]);
    expect(sequential(0)).toEqual([68, 1, 84]);
    expect(sequential(1)).toEqual([253, 231, 37]);
    expect(sequential(2)).toEqual([253, 231, 37]);
  });
});
