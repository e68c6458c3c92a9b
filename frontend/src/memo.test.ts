import { describe, expect, it } from "vitest";
import { memo } from "./memo";

describe("memo", () => {
  it("loads each argument list once", async () => {
    const calls: unknown[][] = [];
    const load = memo(async (p: number, dims: [number, number]) => {
      calls.push([p, dims]);
      return `${p}:${dims.join(",")}`;
    });
    const first = load(1, [0, 1]);
    expect(load(1, [0, 1])).toBe(first); // the same promise, even while it is pending
    expect(await first).toBe("1:0,1");
    expect(await load(1, [1, 0])).toBe("1:1,0");
    expect(await load(2, [0, 1])).toBe("2:0,1");
    expect(calls).toEqual([
      [1, [0, 1]],
      [1, [1, 0]],
      [2, [0, 1]],
    ]);
  });

  it("forgets failed loads and keeps the rest", async () => {
    let attempts = 0;
    const load = memo(async (key: string) => {
      attempts++;
      if (key === "bad" && attempts === 1) throw new Error("offline");
      return key.length;
    });
    await expect(load("bad")).rejects.toThrow("offline");
    expect(await load("bad")).toBe(3); // asked again
    expect(await load("bad")).toBe(3);
    expect(attempts).toBe(2);
  });
});
