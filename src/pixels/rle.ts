/**
 * RLE Lossless decoder, PS3.5 Annex G. Written here rather than taken from dcmjs-codecs because
 * it is ~60 lines and needs no WASM.
 *
 * A frame is a 64-byte header (segment count + 15 offsets, little-endian UL) followed by
 * PackBits segments. There is one segment per byte of each sample: for sample s, the most
 * significant byte comes first (G.2). Output is interleaved, little-endian, one frame.
 */
import { PixelDecodeError } from './errors';

export function decodeRleFrame(
  frame: Buffer,
  rows: number,
  columns: number,
  samplesPerPixel: number,
  bitsAllocated: number,
): Buffer {
  if (bitsAllocated % 8 !== 0) {
    throw new PixelDecodeError('UNSUPPORTED_PIXEL_FORMAT', `RLE with BitsAllocated ${bitsAllocated} is not byte aligned`);
  }
  const bytesPerSample = bitsAllocated / 8;
  const nSegments = samplesPerPixel * bytesPerSample;
  if (frame.length < 64) throw new PixelDecodeError('CODEC_ERROR', `RLE frame of ${frame.length} bytes has no header`);
  const declared = frame.readUInt32LE(0);
  if (declared !== nSegments) {
    throw new PixelDecodeError('CODEC_ERROR', `RLE header has ${declared} segments, expected ${nSegments}`);
  }
  const offsets: number[] = [];
  for (let i = 0; i < nSegments; i++) offsets.push(frame.readUInt32LE(4 + 4 * i));
  offsets.push(frame.length);

  const pixels = rows * columns;
  const out = Buffer.alloc(pixels * nSegments);
  const seg = Buffer.alloc(pixels);
  for (let i = 0; i < nSegments; i++) {
    const start = offsets[i];
    const end = offsets[i + 1];
    if (start < 64 || end < start || end > frame.length) {
      throw new PixelDecodeError('CODEC_ERROR', `RLE segment ${i} has invalid bounds ${start}..${end}`);
    }
    const produced = unpackBits(frame, start, end, seg);
    // Shorter is corruption. Longer happens with encoders that pad a row; pydicom trims it too.
    if (produced < pixels) {
      throw new PixelDecodeError('CODEC_ERROR', `RLE segment ${i} decodes to ${produced} bytes, expected ${pixels}`);
    }
    const sample = Math.floor(i / bytesPerSample);
    const byteInSample = bytesPerSample - 1 - (i % bytesPerSample); // MSB segment -> highest LE byte
    const stride = nSegments;
    let o = sample * bytesPerSample + byteInSample;
    for (let p = 0; p < pixels; p++, o += stride) out[o] = seg[p];
  }
  return out;
}

/** PackBits into `dst`; returns how many bytes the segment would produce (may exceed dst). */
function unpackBits(src: Buffer, start: number, end: number, dst: Buffer): number {
  let i = start;
  let n = 0;
  const cap = dst.length;
  while (i < end) {
    const h = src[i++];
    if (h < 128) {
      const count = h + 1; // literal run
      const avail = Math.min(count, end - i);
      if (n < cap) src.copy(dst, n, i, i + Math.min(avail, cap - n));
      i += avail;
      n += avail;
    } else if (h > 128) {
      const count = 257 - h; // replicate next byte
      if (i >= end) break;
      const v = src[i++];
      if (n < cap) dst.fill(v, n, Math.min(cap, n + count));
      n += count;
    } // h === 128: no-op
  }
  return n;
}
