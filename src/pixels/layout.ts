/**
 * Byte-level reshaping shared by the native and encapsulated paths: byte swapping, 1-bit
 * unpacking, planar -> interleaved, YBR_FULL_422 upsampling and sign extension.
 * All functions work on whole frames with plain loops (a 512x512 frame takes ~1 ms).
 */
import type { Dtype } from './types';
import { typedView } from './types';

/** Reverse the byte order of each `size`-byte element in place (Explicit VR Big Endian). */
export function swapInPlace(buf: Buffer, size: number): void {
  if (size === 2) buf.swap16();
  else if (size === 4) buf.swap32();
  else if (size === 8) buf.swap64();
}

/**
 * BitsAllocated 1: bit i of the stream is pixel i, least significant bit first within each
 * byte (PS3.5 8.1.1), and frames are not byte aligned. Same as pydicom's unpack_bits.
 */
export function unpackBits(src: Uint8Array, count: number): Buffer {
  const out = Buffer.alloc(count);
  for (let i = 0; i < count; i++) out[i] = (src[i >> 3] >> (i & 7)) & 1;
  return out;
}

/** One frame stored plane by plane (PlanarConfiguration 1) -> pixel by pixel. */
export function planarToInterleaved(
  frame: Uint8Array,
  pixels: number,
  samples: number,
  bytesPerSample: number,
): Buffer {
  const out = Buffer.alloc(pixels * samples * bytesPerSample);
  const plane = pixels * bytesPerSample;
  for (let s = 0; s < samples; s++) {
    for (let p = 0; p < pixels; p++) {
      const src = s * plane + p * bytesPerSample;
      const dst = (p * samples + s) * bytesPerSample;
      for (let b = 0; b < bytesPerSample; b++) out[dst + b] = frame[src + b];
    }
  }
  return out;
}

/**
 * Native YBR_FULL_422 (PS3.3 C.7.6.3.1.2) stores Y1 Y2 Cb Cr for each pair of pixels;
 * expand to Y1 Cb Cr Y2 Cb Cr, exactly as pydicom 2.3's numpy handler does. No colour
 * conversion: values stay YCbCr and info.photometric stays YBR_FULL_422.
 */
export function expandYbr422(src: Uint8Array, pixels: number, bytesPerSample: number): Buffer {
  const out = Buffer.alloc(pixels * 3 * bytesPerSample);
  const b = bytesPerSample;
  for (let pair = 0; pair < pixels / 2; pair++) {
    const s = pair * 4 * b;
    const d = pair * 6 * b;
    for (let k = 0; k < b; k++) {
      const y1 = src[s + k];
      const y2 = src[s + b + k];
      const cb = src[s + 2 * b + k];
      const cr = src[s + 3 * b + k];
      out[d + k] = y1;
      out[d + b + k] = cb;
      out[d + 2 * b + k] = cr;
      out[d + 3 * b + k] = y2;
      out[d + 4 * b + k] = cb;
      out[d + 5 * b + k] = cr;
    }
  }
  return out;
}

/**
 * Signed data with BitsStored < BitsAllocated: the pixel value is the two's complement number
 * in the low BitsStored bits (HighBit = BitsStored - 1); whatever sits above it (often zeros,
 * sometimes legacy overlay bits) is not part of the value. We sign-extend from BitsStored, as
 * DCMTK and pydicom >= 3.0 do. pydicom 2.3's pixel_array does NOT (it returns the raw
 * BitsAllocated-wide word); the two agree whenever the file already holds sign-extended values,
 * which is the case for every sample here. Unsigned data is returned as stored (not masked),
 * matching pydicom 2.3, so no bit of the file is ever dropped from unsigned arrays.
 */
export function signExtendInPlace(buf: Buffer, dtype: Dtype, bitsStored: number): void {
  const width = dtype === 'int8' ? 8 : dtype === 'int16' ? 16 : dtype === 'int32' ? 32 : 0;
  if (width === 0 || bitsStored >= width) return;
  const view = typedView(dtype, buf) as Int8Array | Int16Array | Int32Array;
  const sign = 2 ** (bitsStored - 1);
  const mask = 2 ** bitsStored - 1;
  for (let i = 0; i < view.length; i++) {
    // Unsigned reading of the low bits, then subtract 2^bs when the sign bit is set.
    const low = (view[i] & mask) >>> 0;
    view[i] = low >= sign ? low - 2 * sign : low;
  }
}
