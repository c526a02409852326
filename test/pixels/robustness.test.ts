/**
 * Bad input never crashes: every failure is a PixelDecodeError with a code. Includes a seeded
 * byte-flip / truncation fuzz over native and compressed samples, and checks that the WASM
 * codecs still decode correctly after they have thrown.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as dicomParser from 'dicom-parser';
import { decodePixels, PixelDecodeError } from '../../src/pixels';
import { buildPart10, imageElements, TSU, type ImageAttrs } from './dicom-writer';
import { SAMPLES, sha256 } from './helpers';

const sample = (n: string) => readFileSync(path.join(SAMPLES, n));

async function expectCode(bytes: Buffer, code: string): Promise<void> {
  await assert.rejects(decodePixels(bytes), (e: unknown) => {
    assert.ok(e instanceof PixelDecodeError, `expected PixelDecodeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.length > code.length + 5, 'message explains the problem');
    return true;
  });
}

/** Either decodes or fails with a PixelDecodeError: anything else is a crash. */
async function survives(bytes: Buffer): Promise<'ok' | string> {
  try {
    await decodePixels(bytes);
    return 'ok';
  } catch (e) {
    if (e instanceof PixelDecodeError) return e.code;
    throw new Error(`not a PixelDecodeError: ${e instanceof Error ? e.stack : String(e)}`);
  }
}

function prng(seed: number): () => number {
  // mulberry32: deterministic, so a failing case can be replayed.
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function firstFragment(bytes: Buffer): Buffer {
  const el = dicomParser.parseDicom(bytes).elements['x7fe00010'];
  const f = el.fragments![0];
  return Buffer.from(bytes.subarray(f.position, f.position + f.length));
}

describe('invalid input -> typed errors', () => {
  it('not DICOM: empty, text, random bytes', async () => {
    await expectCode(Buffer.alloc(0), 'NOT_DICOM');
    await expectCode(Buffer.from('hello world'), 'NOT_DICOM');
    await expectCode(sample('SOURCES.md'), 'NOT_DICOM');
    await expectCode(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)), 'NOT_DICOM');
  });

  it('DICM prefix followed by garbage -> INVALID_DICOM', async () => {
    const b = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from([0x02, 0x00, 0x10, 0x00, 0x55, 0x49, 0xff, 0xff, 1, 2, 3])]);
    await expectCode(b, 'INVALID_DICOM');
  });

  it('rejects a non-Buffer argument', async () => {
    await expectCode('x' as unknown as Buffer, 'INVALID_ARGUMENT');
  });

  it('missing and impossible attributes', async () => {
    const px: [number, string, Buffer] = [0x7fe00010, 'OW', Buffer.alloc(8)];
    const base: ImageAttrs = { rows: 2, cols: 2, ba: 16 };
    const without = (tag: number) => imageElements(base).filter(([t]) => t !== tag);
    await expectCode(buildPart10(TSU.explicitLE, [...without(0x00280010), px]), 'MISSING_ATTRIBUTE');
    await expectCode(buildPart10(TSU.explicitLE, [...without(0x00280004), px]), 'MISSING_ATTRIBUTE');
    await expectCode(buildPart10(TSU.explicitLE, [...without(0x00280101), px]), 'MISSING_ATTRIBUTE');
    await expectCode(buildPart10(TSU.explicitLE, [...imageElements({ ...base, ba: 12 }), px]), 'UNSUPPORTED_PIXEL_FORMAT');
    await expectCode(buildPart10(TSU.explicitLE, [...imageElements({ ...base, bs: 17 }), px]), 'INVALID_ATTRIBUTE');
    await expectCode(buildPart10(TSU.explicitLE, [...imageElements({ ...base, rows: 0 }), px]), 'INVALID_ATTRIBUTE');
    await expectCode(buildPart10(TSU.explicitLE, [...imageElements({ ...base, frames: 2 }), px]), 'TRUNCATED_PIXEL_DATA');
    await expectCode(buildPart10('1.2.3.4.5', [...imageElements(base), px]), 'UNSUPPORTED_TRANSFER_SYNTAX');
    await expectCode(buildPart10(TSU.explicitLE, imageElements(base)), 'NO_PIXEL_DATA');
  });

  it('absurd frame count or size -> IMAGE_TOO_LARGE before allocating', async () => {
    const px: [number, string, Buffer] = [0x7fe00010, 'OW', Buffer.alloc(8)];
    const huge = imageElements({ rows: 65535, cols: 65535, ba: 32, frames: 99999 });
    await expectCode(buildPart10(TSU.explicitLE, [...huge, px]), 'IMAGE_TOO_LARGE');
  });

  it('native transfer syntax with encapsulated data, and the reverse -> INVALID_DICOM', async () => {
    const attrs = imageElements({ rows: 2, cols: 2, ba: 8 });
    await expectCode(buildPart10(TSU.explicitLE, attrs, { bot: [], fragments: [Buffer.alloc(4)] }), 'INVALID_DICOM');
    await expectCode(buildPart10(TSU.rle, [...attrs, [0x7fe00010, 'OB', Buffer.alloc(4)]]), 'INVALID_DICOM');
  });

  it('truncated samples: pydicom__MR_truncated and cuts inside native pixel data', async () => {
    await expectCode(sample('pydicom__MR_truncated.dcm'), 'TRUNCATED_PIXEL_DATA');
    // CT_small has 138 bytes of elements after its pixel data: cutting those is a corrupt
    // data set (INVALID_DICOM, pixels intact but the file is not trusted); deeper cuts land
    // inside the pixel data.
    const ct = sample('pydicom__CT_small.dcm');
    for (const cut of [1, 100]) await expectCode(ct.subarray(0, ct.length - cut), 'INVALID_DICOM');
    for (const cut of [139, 1000, 30000]) await expectCode(ct.subarray(0, ct.length - cut), 'TRUNCATED_PIXEL_DATA');
    const rle = sample('pydicom__MR_small_RLE.dcm');
    assert.notEqual(await survives(rle.subarray(0, rle.length - 500)), 'ok');
  });
});

describe('corrupt compressed frames', () => {
  const attrs: ImageAttrs = { rows: 64, cols: 64, ba: 16, pr: 1 };
  const garbage = Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 131 + 7) & 0xff));

  for (const [ts, name] of [
    [TSU.jpegBaseline, 'JPEG baseline'],
    [TSU.jpegLossless, 'JPEG lossless'],
    [TSU.jpegLs, 'JPEG-LS'],
    [TSU.j2k, 'JPEG 2000'],
  ]) {
    it(`${name}: garbage frame -> CODEC_ERROR`, async () => {
      const a = ts === TSU.jpegBaseline ? { ...attrs, ba: 8, pr: 0 } : attrs;
      await expectCode(buildPart10(ts, imageElements(a), { bot: [], fragments: [garbage] }), 'CODEC_ERROR');
    });
  }

  it('JPEG extended (4.51) decode failure -> UNSUPPORTED_TRANSFER_SYNTAX', async () => {
    await expectCode(buildPart10(TSU.jpegExtended, imageElements({ ...attrs, bs: 12, pr: 0 }), { bot: [], fragments: [garbage] }), 'UNSUPPORTED_TRANSFER_SYNTAX');
  });

  it('codestream whose size disagrees with Rows/Columns -> CODEC_ERROR', async () => {
    const j2k = firstFragment(sample('pydicom__MR_small_jp2klossless.dcm')); // 64x64
    await expectCode(buildPart10(TSU.j2k, imageElements({ ...attrs, rows: 32 }), { bot: [], fragments: [j2k] }), 'CODEC_ERROR');
  });

  it('RLE: wrong segment count, short segment, bad offsets -> CODEC_ERROR', async () => {
    const rle = firstFragment(sample('pydicom__MR_small_RLE.dcm'));
    const make = (f: Buffer) => buildPart10(TSU.rle, imageElements(attrs), { bot: [], fragments: [f] });
    const wrongCount = Buffer.from(rle);
    wrongCount.writeUInt32LE(3, 0);
    await expectCode(make(wrongCount), 'CODEC_ERROR');
    const badOffset = Buffer.from(rle);
    badOffset.writeUInt32LE(rle.length + 10, 8);
    await expectCode(make(badOffset), 'CODEC_ERROR');
    await expectCode(make(rle.subarray(0, 200)), 'CODEC_ERROR');
    await expectCode(make(Buffer.alloc(10)), 'CODEC_ERROR');
    await expectCode(buildPart10(TSU.rle, imageElements({ ...attrs, ba: 1 }), { bot: [], fragments: [rle] }), 'UNSUPPORTED_PIXEL_FORMAT');
  });

  it('codecs still decode correctly after failures (WASM re-instantiated)', async () => {
    const files = ['pydicom__MR_small_jp2klossless.dcm', 'pydicom__MR_small_jpeg_ls_lossless.dcm', 'pydicom__SC_rgb_jpeg_dcmtk.dcm'];
    const before = await Promise.all(files.map(async (f) => sha256((await decodePixels(sample(f))).array.data)));
    await expectCode(buildPart10(TSU.jpegLs, imageElements(attrs), { bot: [], fragments: [garbage] }), 'CODEC_ERROR');
    await expectCode(buildPart10(TSU.j2k, imageElements(attrs), { bot: [], fragments: [garbage] }), 'CODEC_ERROR');
    const afterwards = await Promise.all(files.map(async (f) => sha256((await decodePixels(sample(f))).array.data)));
    assert.deepEqual(afterwards, before);
  });
});

describe('fuzz: byte flips and truncations never crash', () => {
  const FILES = [
    'pydicom__MR_small.dcm',
    'pydicom__MR_small_bigendian.dcm',
    'pydicom__image_dfl.dcm',
    'pydicom__liver_1frame.dcm',
    'pydicom__MR_small_RLE.dcm',
    'pydicom__SC_rgb_rle_2frame.dcm',
    'pydicom__SC_rgb_jpeg_dcmtk.dcm',
    'pydicom__SC_rgb_jpeg_gdcm.dcm',
    'pydicom__MR_small_jpeg_ls_lossless.dcm',
    'pydicom__MR_small_jp2klossless.dcm',
    'pydicom__JPGExtended.dcm',
  ];
  for (const name of FILES) {
    it(name, async () => {
      const orig = sample(name);
      const rand = prng(name.length * 7919);
      const codes = new Map<string, number>();
      const tally = (c: string) => codes.set(c, (codes.get(c) ?? 0) + 1);
      for (let i = 0; i < 40; i++) {
        const b = Buffer.from(orig);
        const flips = 1 + Math.floor(rand() * 8);
        // Half the flips land in the last quarter of the file, i.e. mostly in the pixel data.
        for (let k = 0; k < flips; k++) {
          const lo = rand() < 0.5 ? Math.floor(orig.length * 0.75) : 132;
          b[lo + Math.floor(rand() * (orig.length - lo))] = Math.floor(rand() * 256);
        }
        tally(await survives(b));
      }
      for (let i = 0; i < 15; i++) tally(await survives(orig.subarray(0, Math.floor(rand() * orig.length))));
      assert.ok(codes.size > 0, JSON.stringify([...codes]));
    });
  }
});
