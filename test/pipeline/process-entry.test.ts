/**
 * The de-identify stage's hand-over: outputs come back in memory within the task's budget
 * (one buffer of their own, transferable), or as files beyond it; either way the same bytes and
 * the same Pixel Data hashes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfigSchema } from '../../src/config/schema';
import { EntryProcessor, EntryResult, RoutedOutput } from '../../src/pipeline/process-entry';
import { makeImage } from '../support/dicom-builder';
import { testConfig } from '../support/gateway-process';
import { withTempDir } from '../support/tools';

const SECRET = Buffer.from('process-entry-test-secret-0123456789');

/** Two routes to one folder destination: one entry, two outputs. */
function processor(dir: string): EntryProcessor {
  const raw = testConfig(dir, { research: { type: 'folder', path: path.join(dir, 'research') } });
  const routes = [
    { name: 'research', profile: 'pixel-only', destinations: ['research'] },
    { name: 'teaching', profile: 'basic', destinations: ['research'] },
  ];
  const config = ConfigSchema.parse({ ...raw, routes, routing: 'fan-out' });
  const out = path.join(dir, 'outgoing');
  fs.mkdirSync(out, { recursive: true });
  return new EntryProcessor(config, SECRET, out);
}

const outputs = (r: EntryResult): RoutedOutput[] => {
  assert.equal(r.kind, 'routed');
  return r.kind === 'routed' ? r.results.map((o) => (assert.equal(o.kind, 'output', JSON.stringify(o)), o as RoutedOutput)) : [];
};

test('outputs come back in memory within memoryBytes, as files beyond it: same bytes, same pixel hashes', async () => {
  await withTempDir(async (dir) => {
    const input = path.join(dir, 'in.dcm');
    const bytes = makeImage({ rows: 64, cols: 64, modality: 'CT' });
    fs.writeFileSync(input, bytes);
    const p = processor(dir);
    const outDir = path.join(dir, 'outgoing');

    const files = outputs(p.process({ id: 'e1', file: input }));
    assert.deepEqual(files.map((o) => [o.route, o.bytes === undefined, fs.existsSync(o.file ?? '')]), [['research', true, true], ['teaching', true, true]]);

    const mem = outputs(p.process({ id: 'e2', file: input, memoryBytes: 4 * bytes.length }));
    assert.deepEqual(fs.readdirSync(outDir).filter((f) => f.startsWith('e2')), [], 'no file for outputs in memory');
    mem.forEach((o, i) => {
      assert.ok(o.bytes && o.file === undefined);
      assert.ok(o.bytes.equals(fs.readFileSync(files[i].file!)), `${o.route}: the same bytes as the file`);
      // Its own ArrayBuffer, whole: transferable to the main thread without a copy.
      assert.equal(o.bytes.byteOffset, 0);
      assert.equal(o.bytes.buffer.byteLength, o.bytes.length);
      assert.ok(o.pixelSha256Before && o.pixelSha256After === o.pixelSha256Before);
      assert.equal(o.pixelSha256After, files[i].pixelSha256After);
    });

    // Room for one output only: the first route's stays in memory, the second goes to a file.
    const mixed = outputs(p.process({ id: 'e3', file: input, memoryBytes: mem[0].bytes!.length + 10 }));
    assert.deepEqual(mixed.map((o) => [o.bytes !== undefined, o.file !== undefined]), [[true, false], [false, true]]);
    assert.ok(fs.readFileSync(mixed[1].file!).equals(mem[1].bytes!));
  });
});
