import { describe, expect, it } from "vitest";
import {
  decodeSelection,
  encodeSelection,
  fromBase64Url,
  fromDeltas,
  toBase64Url,
  toDeltas,
} from "./codec";

function randomSelection(n: number, fraction: number, seed: number): Int32Array {
  let state = seed;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    if (state / 2 ** 31 < fraction) out.push(i);
  }
  return Int32Array.from(out);
}

describe("selection codes", () => {
  it("round-trips base64url including all byte values", () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const code = toBase64Url(bytes);
    expect(code).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Array.from(fromBase64Url(code))).toEqual(Array.from(bytes));
  });

  it("writes delta varints as LEB128", () => {
    // 0 -> delta 0; 1 -> 0; 200 -> 198 = 0xc6 -> [0xc6, 0x01]
    expect(Array.from(toDeltas([0, 1, 200]))).toEqual([0, 0, 0xc6, 0x01]);
    expect(Array.from(fromDeltas(Uint8Array.from([0, 0, 0xc6, 0x01])))).toEqual([0, 1, 200]);
  });

  it.each([
    [10, 0.5],
    [1000, 0.01],
    [100000, 0.1],
    [100000, 0.9],
  ])("round-trips n=%i fraction=%f", async (n, fraction) => {
    const selection = randomSelection(n, fraction, 7);
    const code = await encodeSelection(selection, n);
    expect(Array.from(await decodeSelection(code, n))).toEqual(Array.from(selection));
  });

  it("keeps a 10 000 of 100 000 contiguous selection short", async () => {
    const selection = Int32Array.from({ length: 10000 }, (_, i) => 40000 + i);
    const code = await encodeSelection(selection, 100000);
    expect(code.length).toBeLessThan(200);
    expect(Array.from(await decodeSelection(code, 100000))).toEqual(Array.from(selection));
  });

  it("chooses the bitset for dense and deltas for sparse selections", async () => {
    expect((await encodeSelection(randomSelection(5000, 0.5, 1), 5000))[0]).toBe("b");
    expect((await encodeSelection([3, 4000, 90000], 100000))[0]).toBe("d");
    expect(await encodeSelection([], 100)).toBe("");
  });

  it("refuses malformed and out-of-range codes", async () => {
    await expect(decodeSelection("x123", 10)).rejects.toThrow(/kind/);
    await expect(decodeSelection("d!!", 10)).rejects.toThrow(/base64url/);
    await expect(decodeSelection("dAAAA", 10)).rejects.toThrow();
    const code = await encodeSelection([0, 50], 100);
    await expect(decodeSelection(code, 20)).rejects.toThrow(/position 50 of 20/);
  });
});
