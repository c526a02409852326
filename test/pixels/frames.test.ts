/**
 * Fragment -> frame mapping (src/pixels/frames.ts) on multi-frame files assembled from real
 * single-frame codestreams. Expected pixels: each frame equals the single-frame decode of the
 * original sample, which samples.test.ts verifies against pydicom / DCMTK.
 * (pydicom 2.3's Pillow handler cannot be the reference here: it treats every fragment of a
 * multi-frame file as a frame.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as dicomParser from 'dicom-parser';
import { decodePixels, PixelDecodeError, type PixelArray } from '../../src/pixels';
import { buildPart10, imageElements, TSU, type ImageAttrs } from './dicom-writer';
import { SAMPLES } from './helpers';

interface Source {
  name: string;
  ts: string;
  attrs: ImageAttrs;
  codestream: Buffer;
  single: PixelArray;
}

async function load(name: string, ts: string, attrs: ImageAttrs): Promise<Source> {
  const bytes = readFileSync(path.join(SAMPLES, name));
  const ds = dicomParser.parseDicom(bytes);
  const el = ds.elements['x7fe00010'];
  const frag = el.fragments![0];
  const codestream = Buffer.from(bytes.subarray(frag.position, frag.position + frag.length));
  return { name, ts, attrs, codestream, single: (await decodePixels(bytes)).array };
}

/** Split a codestream in `n` pieces of even length (fragments must be even). */
function pieces(b: Buffer, n: number): Buffer[] {
  const size = Math.ceil(b.length / n / 2) * 2;
  return Array.from({ length: n }, (_, i) => b.subarray(i * size, Math.min(b.length, (i + 1) * size))).filter((p) => p.length);
}

function offsets(frags: Buffer[][]): number[] {
  const out: number[] = [];
  let pos = 0;
  for (const f of frags) {
    out.push(pos);
    for (const p of f) pos += 8 + p.length + (p.length % 2);
  }
  return out;
}

function repeated(a: PixelArray, frames: number): PixelArray {
  return { dtype: a.dtype, shape: [frames, ...a.shape.slice(1)], data: Buffer.concat(Array(frames).fill(a.data)) };
}

const SOURCES: [string, string, ImageAttrs][] = [
  ['pydicom__SC_rgb_jpeg_dcmtk.dcm', TSU.jpegBaseline, { rows: 100, cols: 100, spp: 3, ba: 8, pi: 'YBR_FULL' }],
  ['pydicom__MR_small_jp2klossless.dcm', TSU.j2k, { rows: 64, cols: 64, ba: 16, pr: 1 }],
  ['pydicom__MR_small_jpeg_ls_lossless.dcm', TSU.jpegLs, { rows: 64, cols: 64, ba: 16, pr: 1 }],
];

describe('encapsulated frames', () => {
  const src: Source[] = [];
  before(async () => {
    for (const [n, ts, a] of SOURCES) src.push(await load(n, ts, a));
  });

  for (const [name] of SOURCES) {
    const s = () => src.find((x) => x.name === name)!;
    const make = (frames: Buffer[][], bot: number[]) =>
      buildPart10(s().ts, imageElements({ ...s().attrs, frames: frames.length }), { bot, fragments: frames.flat() });

    it(`${name}: Basic Offset Table, 3 fragments per frame`, async () => {
      const frames = [pieces(s().codestream, 3), pieces(s().codestream, 3), pieces(s().codestream, 3)];
      const { array } = await decodePixels(make(frames, offsets(frames)));
      assert.deepEqual(array, repeated(s().single, 3));
    });

    it(`${name}: empty offset table, one fragment per frame`, async () => {
      const frames = [[s().codestream], [s().codestream]];
      assert.deepEqual((await decodePixels(make(frames, []))).array, repeated(s().single, 2));
    });

    it(`${name}: empty offset table, uneven fragments split on the FFD9 end marker`, async () => {
      const frames = [pieces(s().codestream, 2), [s().codestream], pieces(s().codestream, 4)];
      assert.deepEqual((await decodePixels(make(frames, []))).array, repeated(s().single, 3));
    });
  }

  const rejects = async (bytes: Buffer, code: string) =>
    assert.rejects(decodePixels(bytes), (e: unknown) => e instanceof PixelDecodeError && e.code === code);

  it('offset table with the wrong number of entries -> FRAME_SPLIT_FAILED', async () => {
    const s = src[0];
    const frames = [[s.codestream], [s.codestream], [s.codestream]];
    const bytes = buildPart10(s.ts, imageElements({ ...s.attrs, frames: 3 }), { bot: offsets(frames).slice(0, 2), fragments: frames.flat() });
    await rejects(bytes, 'FRAME_SPLIT_FAILED');
  });

  it('offset table entry that is not a fragment start -> FRAME_SPLIT_FAILED', async () => {
    const s = src[0];
    const frames = [[s.codestream], [s.codestream]];
    const bytes = buildPart10(s.ts, imageElements({ ...s.attrs, frames: 2 }), { bot: [0, 10], fragments: frames.flat() });
    await rejects(bytes, 'FRAME_SPLIT_FAILED');
  });

  it('fewer fragments than frames -> FRAME_SPLIT_FAILED', async () => {
    const s = src[0];
    const bytes = buildPart10(s.ts, imageElements({ ...s.attrs, frames: 3 }), { bot: [], fragments: [s.codestream, s.codestream] });
    await rejects(bytes, 'FRAME_SPLIT_FAILED');
  });

  it('no end marker where a frame should end -> FRAME_SPLIT_FAILED', async () => {
    const s = src[0];
    const cut = s.codestream.subarray(0, s.codestream.length - 2); // drop EOI
    const bytes = buildPart10(s.ts, imageElements({ ...s.attrs, frames: 2 }), {
      bot: [],
      fragments: [...pieces(cut, 2), ...pieces(s.codestream, 2)],
    });
    await rejects(bytes, 'FRAME_SPLIT_FAILED');
  });

  it('RLE multi-fragment frame (one fragment per frame is the rule) -> frames still resolved by BOT', async () => {
    // RLE has no end marker, so without an offset table extra fragments are unsplittable.
    const bytes = readFileSync(path.join(SAMPLES, 'pydicom__SC_rgb_rle_2frame.dcm'));
    const ds = dicomParser.parseDicom(bytes);
    const frags = ds.elements['x7fe00010'].fragments!.map((f) => Buffer.from(bytes.subarray(f.position, f.position + f.length)));
    const attrs: ImageAttrs = { rows: 100, cols: 100, spp: 3, ba: 8, frames: 2 };
    const single = (await decodePixels(bytes)).array;
    const withBot = [pieces(frags[0], 2), pieces(frags[1], 3)];
    assert.deepEqual((await decodePixels(buildPart10(TSU.rle, imageElements(attrs), { bot: offsets(withBot), fragments: withBot.flat() }))).array, single);
    await rejects(buildPart10(TSU.rle, imageElements(attrs), { bot: [], fragments: withBot.flat() }), 'FRAME_SPLIT_FAILED');
  });
});
