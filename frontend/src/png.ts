/**
 * Palette PNG handling for client-side recolouring: heatmaps arrive once as 8-bit palette
 * PNGs whose pixel values are the normalized relevance (0..255, 127.5 = zero). Swapping the
 * PLTE chunk for a gray ramp lets the browser's decoder hand the indices back.
 */

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The PNG with its PLTE chunk replaced by `palette` (256 RGB triples, 768 bytes). */
export function replacePalette(png: Uint8Array, palette: Uint8Array): Uint8Array {
  if (!SIGNATURE.every((byte, i) => png[i] === byte)) throw new Error("not a PNG file");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let offset = 8;
  while (offset + 12 <= png.length) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...png.subarray(offset + 4, offset + 8));
    const end = offset + 12 + length;
    if (type === "PLTE") {
      const chunk = new Uint8Array(12 + palette.length);
      const chunkView = new DataView(chunk.buffer);
      chunkView.setUint32(0, palette.length);
      chunk.set(png.subarray(offset + 4, offset + 8), 4);
      chunk.set(palette, 8);
      chunkView.setUint32(8 + palette.length, crc32(chunk.subarray(4, 8 + palette.length)));
      const out = new Uint8Array(png.length - (end - offset) + chunk.length);
      out.set(png.subarray(0, offset), 0);
      out.set(chunk, offset);
      out.set(png.subarray(end), offset + chunk.length);
      return out;
    }
    offset = end;
  }
  throw new Error("PNG has no palette (PLTE chunk)");
}

/** 768 bytes: index i maps to gray (i, i, i). */
export const GRAY_RAMP = (() => {
  const ramp = new Uint8Array(768);
  for (let i = 0; i < 256; i++) ramp.fill(i, 3 * i, 3 * i + 3);
  return ramp;
})();

/** A palette of 256 "rrggbb" hex strings as 768 bytes. */
export function paletteBytes(hex: readonly string[]): Uint8Array {
  if (hex.length !== 256) throw new Error(`a palette has 256 colours, got ${hex.length}`);
  const out = new Uint8Array(768);
  hex.forEach((colour, i) => {
    out[3 * i] = parseInt(colour.slice(0, 2), 16);
    out[3 * i + 1] = parseInt(colour.slice(2, 4), 16);
    out[3 * i + 2] = parseInt(colour.slice(4, 6), 16);
  });
  return out;
}

/**
 * Overlay pixels (RGBA) like relscope.attribution.image.overlay: the heatmap colour over the
 * gray input with opacity alpha * |R| / max|R|, recovered from the index as |2 i / 255 - 1|.
 */
export function overlayPixels(
  indices: Uint8Array,
  gray: Uint8Array,
  palette: Uint8Array,
  alpha = 1,
): Uint8ClampedArray {
  const out = new Uint8ClampedArray(indices.length * 4);
  for (let p = 0; p < indices.length; p++) {
    const index = indices[p];
    const opacity = alpha * Math.abs((2 * index) / 255 - 1);
    for (let c = 0; c < 3; c++) {
      out[4 * p + c] = Math.round((1 - opacity) * gray[p] + opacity * palette[3 * index + c]);
    }
    out[4 * p + 3] = 255;
  }
  return out;
}

/** Heatmap pixels (RGBA) of indices under a palette. */
export function heatmapPixels(indices: Uint8Array, palette: Uint8Array): Uint8ClampedArray {
  const out = new Uint8ClampedArray(indices.length * 4);
  for (let p = 0; p < indices.length; p++) {
    const index = indices[p];
    out[4 * p] = palette[3 * index];
    out[4 * p + 1] = palette[3 * index + 1];
    out[4 * p + 2] = palette[3 * index + 2];
    out[4 * p + 3] = 255;
  }
  return out;
}
