/**
 * Compact text codes for selections (sets of positions 0..n-1), for share URLs.
 *
 * Two encodings are tried and the shorter wins: a bitset (good for dense selections) and
 * delta-varints of the sorted positions (good for sparse ones). Both are deflated and
 * written as base64url; the first character says which ("b" or "d"). An empty selection is "".
 */

export function toBase64Url(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64Url(code: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(code)) throw new Error("selection code is not base64url");
  const text = atob(code.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

async function pipe(bytes: Uint8Array, stream: CompressionStream | DecompressionStream) {
  const body = new Blob([bytes as BlobPart]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(body).arrayBuffer());
}

export const deflate = (bytes: Uint8Array) => pipe(bytes, new CompressionStream("deflate-raw"));
export const inflate = (bytes: Uint8Array) => pipe(bytes, new DecompressionStream("deflate-raw"));

export function toBitset(positions: ArrayLike<number>, n: number): Uint8Array {
  const bits = new Uint8Array(Math.ceil(n / 8));
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i];
    bits[p >> 3] |= 1 << (p & 7);
  }
  return bits;
}

export function fromBitset(bits: Uint8Array, n: number): Int32Array {
  const out: number[] = [];
  for (let p = 0; p < n; p++) if (bits[p >> 3] & (1 << (p & 7))) out.push(p);
  return Int32Array.from(out);
}

/** Sorted, distinct positions as LEB128 varints of their successive differences. */
export function toDeltas(sorted: ArrayLike<number>): Uint8Array {
  const out: number[] = [];
  let previous = -1;
  for (let i = 0; i < sorted.length; i++) {
    let delta = sorted[i] - previous - 1;
    previous = sorted[i];
    while (delta >= 0x80) {
      out.push((delta & 0x7f) | 0x80);
      delta >>>= 7;
    }
    out.push(delta);
  }
  return Uint8Array.from(out);
}

export function fromDeltas(bytes: Uint8Array): Int32Array {
  const out: number[] = [];
  let previous = -1;
  let value = 0;
  let shift = 0;
  for (const byte of bytes) {
    value += (byte & 0x7f) * 2 ** shift;
    if (byte & 0x80) {
      shift += 7;
      if (shift > 28) throw new Error("selection code has an overlong number");
      continue;
    }
    previous += value + 1;
    out.push(previous);
    value = 0;
    shift = 0;
  }
  if (shift !== 0) throw new Error("selection code ends inside a number");
  return Int32Array.from(out);
}

/** The shorter code of a selection of positions in 0..n-1 (sorted ascending, distinct). */
export async function encodeSelection(sorted: ArrayLike<number>, n: number): Promise<string> {
  if (sorted.length === 0) return "";
  const [bits, deltas] = await Promise.all([deflate(toBitset(sorted, n)), deflate(toDeltas(sorted))]);
  return bits.length < deltas.length ? "b" + toBase64Url(bits) : "d" + toBase64Url(deltas);
}

/** Positions of a code from {@link encodeSelection}; throws on malformed or out-of-range codes. */
export async function decodeSelection(code: string, n: number): Promise<Int32Array> {
  if (code === "") return new Int32Array(0);
  const kind = code[0];
  if (kind !== "b" && kind !== "d") throw new Error(`unknown selection code kind ${kind}`);
  const packed = fromBase64Url(code.slice(1));
  let raw: Uint8Array;
  try {
    raw = await inflate(packed);
  } catch {
    throw new Error("selection code does not inflate");
  }
  const positions = kind === "b" ? fromBitset(raw, n) : fromDeltas(raw);
  if (positions.length && positions[positions.length - 1] >= n) {
    throw new Error(`selection code names position ${positions[positions.length - 1]} of ${n}`);
  }
  return positions;
}
