/** Selection geometry on screen coordinates: boxes, lassos and set combination. */

export type Combine = "replace" | "add" | "remove";

/** Even-odd rule; `polygon` is a flat [x0, y0, x1, y1, ...] list (closed implicitly). */
export function insidePolygon(x: number, y: number, polygon: ArrayLike<number>): boolean {
  let inside = false;
  const count = polygon.length >> 1;
  for (let i = 0, j = count - 1; i < count; j = i++) {
    const xi = polygon[2 * i];
    const yi = polygon[2 * i + 1];
    const xj = polygon[2 * j];
    const yj = polygon[2 * j + 1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Positions of points (flat x, y pairs) inside the polygon, ascending. */
export function pointsInPolygon(points: ArrayLike<number>, polygon: ArrayLike<number>): Int32Array {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < polygon.length; i += 2) {
    minX = Math.min(minX, polygon[i]);
    maxX = Math.max(maxX, polygon[i]);
    minY = Math.min(minY, polygon[i + 1]);
    maxY = Math.max(maxY, polygon[i + 1]);
  }
  const out: number[] = [];
  for (let p = 0; p < points.length >> 1; p++) {
    const x = points[2 * p];
    const y = points[2 * p + 1];
    // The bounding box rejects most points before the edge loop.
    if (x < minX || x > maxX || y < minY || y > maxY) continue;
    if (insidePolygon(x, y, polygon)) out.push(p);
  }
  return Int32Array.from(out);
}

/** Positions of points inside the axis-aligned box spanned by two corners, ascending. */
export function pointsInBox(
  points: ArrayLike<number>,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
): Int32Array {
  const [left, right] = x0 < x1 ? [x0, x1] : [x1, x0];
  const [top, bottom] = y0 < y1 ? [y0, y1] : [y1, y0];
  const out: number[] = [];
  for (let p = 0; p < points.length >> 1; p++) {
    const x = points[2 * p];
    const y = points[2 * p + 1];
    if (x >= left && x <= right && y >= top && y <= bottom) out.push(p);
  }
  return Int32Array.from(out);
}

/** Combine two ascending position lists: replace, union or difference. */
export function combine(current: Int32Array, chosen: Int32Array, how: Combine): Int32Array {
  if (how === "replace") return chosen;
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < current.length || j < chosen.length) {
    const a = i < current.length ? current[i] : Infinity;
    const b = j < chosen.length ? chosen[j] : Infinity;
    if (a < b) {
      out.push(a);
      i++;
    } else if (b < a) {
      if (how === "add") out.push(b);
      j++;
    } else {
      if (how === "add") out.push(a);
      i++;
      j++;
    }
  }
  return Int32Array.from(out);
}

/** The combination a pointer gesture asks for: Shift adds, Alt/Ctrl/Meta removes. */
export function combineFor(event: { shiftKey: boolean; altKey: boolean; ctrlKey: boolean; metaKey: boolean }): Combine {
  if (event.altKey || event.ctrlKey || event.metaKey) return "remove";
  return event.shiftKey ? "add" : "replace";
}

/** Index k of the first largest gap l[k] - l[k-1] of ascending eigenvalues (k clusters). */
export function eigengapK(eigenvalues: ArrayLike<number>): number {
  const sorted = Array.from(eigenvalues).sort((a, b) => a - b);
  let best = -Infinity;
  let k = 0;
  for (let i = 1; i < sorted.length; i++) {
    const gap = sorted[i] - sorted[i - 1];
    if (gap > best) {
      best = gap;
      k = i;
    }
  }
  return k;
}

/** The ascending positions whose label is `label` (a cluster's points). */
export function positionsOf(labels: ArrayLike<number>, label: number): Int32Array {
  const positions: number[] = [];
  for (let p = 0; p < labels.length; p++) if (labels[p] === label) positions.push(p);
  return Int32Array.from(positions);
}
