import { describe, expect, it } from "vitest";
import { bodyKey, RequestCache } from "./cache";

describe("request cache", () => {
  it("reuses answers of equal bodies, keeps the most recent, forgets failures", async () => {
    const cache = new RequestCache<number>(2);
    let loads = 0;
    const load = (v: number) => () => Promise.resolve(++loads * 0 + v);
    expect(await cache.get(bodyKey({ a: 1, b: 2 }), load(1))).toBe(1);
    expect(await cache.get(bodyKey({ b: 2, a: 1 }), load(9))).toBe(1); // same body, other key order
    expect(loads).toBe(1);
    await cache.get("x", load(2));
    await cache.get(bodyKey({ a: 1, b: 2 }), load(9)); // touch: now most recent
    await cache.get("y", load(3)); // evicts "x"
    expect(cache.size).toBe(2);
    expect(await cache.get("x", load(4))).toBe(4);
    await expect(cache.get("bad", () => Promise.reject(new Error("no")))).rejects.toThrow("no");
    await Promise.resolve();
    expect(await cache.get("bad", load(5))).toBe(5);
  });
});
