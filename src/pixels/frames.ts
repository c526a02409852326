/**
 * Encapsulated Pixel Data (PS3.5 A.4): map fragments onto frames.
 * Rules, in order (the brief's policy, and what pydicom/DCMTK do):
 *  1. a non-empty Basic Offset Table gives each frame's first fragment;
 *  2. as many fragments as frames: one fragment per frame;
 *  3. one frame: all fragments concatenated;
 *  4. otherwise a frame ends with the fragment whose data ends in an FFD9 marker
 *     (JPEG / JPEG-LS EOI and JPEG 2000 EOC share that code), allowing one 0x00 pad byte.
 * Anything that still does not give exactly `frames` frames is an error, never a guess.
 */
import type * as dicomParser from 'dicom-parser';
import { PixelDecodeError } from './errors';

export function splitFrames(dataSet: dicomParser.DataSet, element: dicomParser.Element, frames: number): Buffer[] {
  const bytes = dataSet.byteArray;
  const fragments = element.fragments ?? [];
  if (fragments.length === 0) throw new PixelDecodeError('FRAME_SPLIT_FAILED', 'encapsulated pixel data has no fragments');
  for (const f of fragments) {
    if (f.position + f.length > bytes.length) {
      throw new PixelDecodeError('TRUNCATED_PIXEL_DATA', `fragment at ${f.position} runs past the end of the data`);
    }
  }
  const view = (start: number, end: number): Buffer => joinFragments(bytes, fragments.slice(start, end));
  const bot = element.basicOffsetTable ?? [];

  if (bot.length > 0) {
    if (bot.length !== frames) {
      throw new PixelDecodeError('FRAME_SPLIT_FAILED', `Basic Offset Table has ${bot.length} entries for ${frames} frames`);
    }
    const starts = bot.map((off, i) => {
      const idx = fragments.findIndex((f) => f.offset === off);
      if (idx < 0) throw new PixelDecodeError('FRAME_SPLIT_FAILED', `offset table entry ${i} (${off}) is not a fragment start`);
      return idx;
    });
    return starts.map((s, i) => {
      const e = i + 1 < starts.length ? starts[i + 1] : fragments.length;
      if (e <= s) throw new PixelDecodeError('FRAME_SPLIT_FAILED', 'offset table is not increasing');
      return view(s, e);
    });
  }
  if (fragments.length === frames) return fragments.map((_, i) => view(i, i + 1));
  if (frames === 1) return [view(0, fragments.length)];
  if (fragments.length < frames) {
    throw new PixelDecodeError('FRAME_SPLIT_FAILED', `${fragments.length} fragments cannot hold ${frames} frames`);
  }

  const out: Buffer[] = [];
  let start = 0;
  fragments.forEach((f, i) => {
    if (endsWithEoi(bytes, f.position, f.length)) {
      out.push(view(start, i + 1));
      start = i + 1;
    }
  });
  if (start !== fragments.length || out.length !== frames) {
    throw new PixelDecodeError(
      'FRAME_SPLIT_FAILED',
      `no offset table and ${fragments.length} fragments: end markers give ${out.length} frames, expected ${frames}`,
    );
  }
  return out;
}

function endsWithEoi(bytes: Uint8Array, pos: number, len: number): boolean {
  let end = pos + len;
  if (end - pos >= 3 && bytes[end - 1] === 0x00) end -= 1; // odd codestream padded to even length
  return end - pos >= 2 && bytes[end - 2] === 0xff && bytes[end - 1] === 0xd9;
}

function joinFragments(bytes: Uint8Array, frags: dicomParser.Fragment[]): Buffer {
  const parts = frags.map((f) => Buffer.from(bytes.buffer, bytes.byteOffset + f.position, f.length));
  // One fragment: a zero-copy view; the codecs copy into WASM memory anyway.
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}
