import { describe, expect, it } from "vitest";
import { pageOf } from "./gallery-panel";

describe("gallery panel", () => {
  it("pages a selection, showing the last page for one past the end", () => {
    expect(pageOf(0, 48, 0)).toEqual({ page: 0, pages: 1 });
    expect(pageOf(0, 48, 3)).toEqual({ page: 0, pages: 1 });
    expect(pageOf(48, 48, 0)).toEqual({ page: 0, pages: 1 });
    expect(pageOf(49, 48, 1)).toEqual({ page: 1, pages: 2 });
    expect(pageOf(100, 24, 9)).toEqual({ page: 4, pages: 5 });
  });
});
