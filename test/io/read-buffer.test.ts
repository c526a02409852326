import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { openInstance, ReadBuffer } from '../../src/io/instance-file';
import { repoRoot } from '../support/tools';

const SAMPLES = path.join(repoRoot(), 'test/fixtures/samples');

test('ReadBuffer: one buffer reused across files, large files get their own, nothing above KEEP_MAX is kept', () => {
  const rb = new ReadBuffer();
  const a = rb.take(1000);
  const b = rb.take(500_000);
  const c = rb.take(300);
  assert.equal(a.length, 1000);
  assert.equal(b.length, 500_000);
  assert.equal(c.buffer, b.buffer, 'a smaller file reuses the grown buffer');
  const big = rb.take(ReadBuffer.KEEP_MAX + 1);
  assert.notEqual(big.buffer, b.buffer);
  assert.equal(rb.take(10).buffer, b.buffer, 'the kept buffer is not replaced by a one-off large one');
});

test('openInstance with a ReadBuffer parses every sample exactly like a fresh read', () => {
  const rb = new ReadBuffer();
  const strip = (x: unknown): string => JSON.stringify(x, (k, v) => (k === 'src' ? undefined : v));
  let parsed = 0;
  for (const name of fs.readdirSync(SAMPLES)) {
    const file = path.join(SAMPLES, name);
    let fresh: string;
    try {
      const o = openInstance(file);
      fresh = strip(o.instance);
      o.close();
    } catch (err) {
      assert.throws(() => openInstance(file, rb), { message: (err as Error).message });
      continue;
    }
    const reused = openInstance(file, rb);
    assert.equal(strip(reused.instance), fresh, name);
    assert.equal(reused.size, fs.statSync(file).size);
    reused.close();
    parsed++;
  }
  assert.ok(parsed >= 10, `parsed ${parsed}`);
});
