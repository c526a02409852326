/**
 * Uncompressed pixel data (implicit/explicit LE, deflated after inflation, explicit BE, and the
 * frames of Encapsulated Uncompressed 1.2.840.10008.1.2.1.98) -> interleaved little-endian
 * array bytes of `frames` frames.
 */
import { PixelDecodeError } from './errors';
import { expandYbr422, planarToInterleaved, swapInPlace, unpackBits } from './layout';

export interface NativeLayout {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** 2 for native YBR_FULL_422 (Y1 Y2 Cb Cr), else samplesPerPixel. */
  storedSamplesPerPixel: number;
  planarConfiguration: number;
  bitsAllocated: number;
  bigEndian: boolean;
  /** Value representation of the pixel element (undefined in implicit VR). */
  vr?: string;
}

/** Bytes that `frames` frames occupy in the file (without the even-length pad byte). */
export function nativeByteLength(l: NativeLayout, frames: number): number {
  const samples = frames * l.rows * l.columns * l.storedSamplesPerPixel;
  return l.bitsAllocated === 1 ? Math.ceil(samples / 8) : (samples * l.bitsAllocated) / 8;
}

export function decodeNative(src: Uint8Array, l: NativeLayout, frames: number): Buffer {
  const need = nativeByteLength(l, frames);
  if (src.length < need) {
    throw new PixelDecodeError('TRUNCATED_PIXEL_DATA', `pixel data has ${src.length} bytes, the image needs ${need}`);
  }
  // Copy exactly the image bytes (dropping pad / excess, as pydicom does) into our own buffer.
  const bytes = Buffer.alloc(need);
  bytes.set(src.subarray(0, need));

  if (l.bigEndian) {
    // OW is a stream of 16-bit words, so even 8- and 1-bit data in an OW element are
    // word-swapped in Big Endian (PS3.5 7.3); OB never is. Wider data swaps per element.
    if (l.bitsAllocated >= 16) swapInPlace(bytes, l.bitsAllocated / 8);
    else if (l.vr === 'OW') {
      if (need % 2 !== 0) throw new PixelDecodeError('INVALID_ATTRIBUTE', 'odd-length OW pixel data');
      swapInPlace(bytes, 2);
    }
  }

  const pixelsPerFrame = l.rows * l.columns;
  if (l.bitsAllocated === 1) {
    if (l.samplesPerPixel !== 1) {
      throw new PixelDecodeError('UNSUPPORTED_PIXEL_FORMAT', 'BitsAllocated 1 with more than one sample per pixel');
    }
    return unpackBits(bytes, frames * pixelsPerFrame);
  }
  if (l.bitsAllocated % 8 !== 0) {
    throw new PixelDecodeError('UNSUPPORTED_PIXEL_FORMAT', `BitsAllocated ${l.bitsAllocated} is not a whole number of bytes`);
  }
  const bps = l.bitsAllocated / 8;
  if (l.storedSamplesPerPixel !== l.samplesPerPixel) {
    if (pixelsPerFrame % 2 !== 0) throw new PixelDecodeError('INVALID_ATTRIBUTE', 'YBR_FULL_422 with an odd pixel count');
    return expandYbr422(bytes, frames * pixelsPerFrame, bps);
  }
  if (l.samplesPerPixel > 1 && l.planarConfiguration === 1) {
    const frameBytes = pixelsPerFrame * l.samplesPerPixel * bps;
    const out = Buffer.alloc(need);
    for (let f = 0; f < frames; f++) {
      const fr = bytes.subarray(f * frameBytes, (f + 1) * frameBytes);
      planarToInterleaved(fr, pixelsPerFrame, l.samplesPerPixel, bps).copy(out, f * frameBytes);
    }
    return out;
  }
  return bytes;
}
