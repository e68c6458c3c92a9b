import { describe, expect, it } from "vitest";
import {
  canvasToInput,
  clampPoint,
  countCovered,
  curvePath,
  eventToCanvas,
  extendStroke,
  fitZoom,
  inputToCanvas,
  MAX_POINTS,
  scoreOf,
  strokeMask,
  targetClass,
  valueRange,
  type Stroke,
} from "./flipgeom";

describe("coordinates", () => {
  it("maps a pixel's canvas square to its (row, column) centre at any zoom", () => {
    for (const zoom of [1, 4, 10, 32]) {
      // The centre of pixel (row 2, column 5).
      expect(canvasToInput(5.5 * zoom, 2.5 * zoom, zoom)).toEqual([2, 5]);
      expect(inputToCanvas([2, 5], zoom)).toEqual([5.5 * zoom, 2.5 * zoom]);
      // The top left corner of the canvas is half a pixel before pixel (0, 0).
      expect(canvasToInput(0, 0, zoom)).toEqual([-0.5, -0.5]);
    }
    const [x, y] = inputToCanvas([3.25, 1.75], 8);
    expect(canvasToInput(x, y, 8)).toEqual([3.25, 1.75]);
  });

  it("scales pointer positions when the canvas is shown at another size", () => {
    const box = { left: 10, top: 20, width: 100, height: 50 };
    expect(eventToCanvas(60, 45, box, { width: 200, height: 100 })).toEqual([100, 50]);
    expect(eventToCanvas(10, 20, box, { width: 100, height: 50 })).toEqual([0, 0]);
  });

  it("fits the zoom to a size and clamps points into the input", () => {
    expect(fitZoom(8, 8)).toBe(32);
    expect(fitZoom(28, 28)).toBe(9);
    expect(fitZoom(224, 224)).toBe(1);
    expect(fitZoom(2, 2)).toBe(64);
    expect(clampPoint([-3, 40.123], 8, 32)).toEqual([-0.5, 31.5]);
    expect(clampPoint([2.3456, 1.001], 8, 8)).toEqual([2.35, 1]);
  });
});

describe("strokes", () => {
  it("adds points no closer than the step, up to the server's limit", () => {
    const stroke: Stroke = { points: [[1, 1]], radius: 1 };
    expect(extendStroke(stroke, [1.1, 1.1])).toBe(false);
    expect(extendStroke(stroke, [1, 2])).toBe(true);
    expect(stroke.points).toEqual([
      [1, 1],
      [1, 2],
    ]);
    const full: Stroke = { points: Array.from({ length: MAX_POINTS }, (_, i) => [0, i] as [number, number]), radius: 1 };
    expect(extendStroke(full, [5, 5])).toBe(false);
  });

  it("covers the pixels whose centres lie within the radius of the path", () => {
    // A dot of radius 1 at (2, 2): the pixel and its four neighbours.
    const dot = strokeMask([{ points: [[2, 2]], radius: 1 }], 5, 5);
    expect(countCovered(dot)).toBe(5);
    expect([...dot].flatMap((v, i) => (v ? [[Math.floor(i / 5), i % 5]] : []))).toEqual([
      [1, 2],
      [2, 1],
      [2, 2],
      [2, 3],
      [3, 2],
    ]);
    // A horizontal line of radius 0.5 along row 1 from column 0 to 3: four pixels.
    const line = strokeMask([{ points: [[1, 0], [1, 3]], radius: 0.5 }], 4, 6);
    expect([...line.slice(6, 12)]).toEqual([1, 1, 1, 1, 0, 0]);
    expect(countCovered(line)).toBe(4);
    // A larger radius covers more; two strokes add up; outside the input is ignored.
    const wide = strokeMask([{ points: [[1, 0], [1, 3]], radius: 1.5 }], 4, 6);
    expect(countCovered(wide)).toBeGreaterThan(countCovered(line));
    const both = strokeMask([{ points: [[0, 0]], radius: 0.5 }, { points: [[3, 5]], radius: 0.5 }], 4, 6);
    expect(countCovered(both)).toBe(2);
    expect(countCovered(strokeMask([{ points: [[-9, -9]], radius: 1 }], 4, 6))).toBe(0);
  });
});

describe("scores and curves", () => {
  const predictions = [
    { index: 2, name: "horse", score: 3, probability: 0.7 },
    { index: 0, name: "cat", score: 1, probability: 0.3 },
  ];
  it("reports the explained class, or the unflipped top class", () => {
    expect(targetClass("predicted", null, predictions)).toBe(2);
    expect(targetClass("class", 0, predictions)).toBe(0);
    expect(targetClass("predicted", null, [])).toBeNull();
    expect(scoreOf(predictions, 0)).toBe(1);
    expect(scoreOf(predictions, 7)).toBeNull();
  });

  it("scales a curve into its box, breaking the line at missing values", () => {
    const box = { x: 10, y: 0, width: 100, height: 50 };
    expect(curvePath([0, 0.5, 1], [2, 1, 0], box, 0, 2)).toBe("M10 0 L60 25 L110 50");
    expect(curvePath([0, 0.25, 0.5, 1], [2, null, 1, 0], box, 0, 2)).toBe("M10 0 M60 25 L110 50");
    expect(curvePath([0, 1], [1, 1], box, 1, 1)).toBe("M10 50 L110 50");
  });

  it("finds the range of every finite value", () => {
    expect(valueRange([[1, 3, null], [-2, Number.NaN]])).toEqual([-2, 3]);
    expect(valueRange([[4]])).toEqual([3.5, 4.5]);
    expect(valueRange([])).toEqual([0, 1]);
  });
});
