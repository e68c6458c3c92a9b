import { describe, expect, it } from "vitest";
import { crc32, GRAY_RAMP, heatmapPixels, overlayPixels, paletteBytes, replacePalette } from "./png";

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const SIG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe("palette PNGs", () => {
  it("computes the standard CRC-32", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  it("replaces the PLTE chunk and keeps the others", () => {
    const ihdr = chunk("IHDR", Uint8Array.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 3, 0, 0, 0]));
    const plte = chunk("PLTE", new Uint8Array(768).fill(9));
    const idat = chunk("IDAT", Uint8Array.from([1, 2, 3]));
    const iend = chunk("IEND", new Uint8Array(0));
    const png = concat(SIG, ihdr, plte, idat, iend);
    const out = replacePalette(png, GRAY_RAMP);
    expect(out.length).toBe(png.length);
    expect(Array.from(out.subarray(0, 8 + ihdr.length))).toEqual(Array.from(png.subarray(0, 8 + ihdr.length)));
    const expected = concat(SIG, ihdr, chunk("PLTE", GRAY_RAMP), idat, iend);
    expect(Array.from(out)).toEqual(Array.from(expected));
    expect(() => replacePalette(concat(SIG, ihdr, idat, iend), GRAY_RAMP)).toThrow(/PLTE/);
    expect(() => replacePalette(Uint8Array.from([1, 2, 3]), GRAY_RAMP)).toThrow(/not a PNG/);
  });

  it("parses hex palettes and colours indices", () => {
    const hex = Array.from({ length: 256 }, (_, i) => (i === 255 ? "ff0010" : "000000"));
    const palette = paletteBytes(hex);
    expect(Array.from(palette.subarray(765))).toEqual([255, 0, 16]);
    expect(Array.from(heatmapPixels(Uint8Array.from([255, 0]), palette))).toEqual([255, 0, 16, 255, 0, 0, 0, 255]);
    expect(() => paletteBytes(["000000"])).toThrow(/256/);
  });

  it("overlays like the server: gray where relevance is zero, colour where it is largest", () => {
    const hex = Array.from({ length: 256 }, () => "ff0000");
    const palette = paletteBytes(hex);
    const out = overlayPixels(Uint8Array.from([255, 0, 128]), Uint8Array.from([100, 100, 100]), palette);
    expect(Array.from(out.subarray(0, 4))).toEqual([255, 0, 0, 255]);
    expect(Array.from(out.subarray(4, 8))).toEqual([255, 0, 0, 255]);
    // index 128: opacity |256/255 - 1| = 1/255
    expect(Array.from(out.subarray(8, 12))).toEqual([101, 100, 100, 255]);
  });
});
