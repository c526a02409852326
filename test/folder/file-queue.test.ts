import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { FileQueuePool, ListReader, packList } from '../../src/folder/file-queue';
import { FileResult } from '../../src/folder/process-file';

const WORKER = path.join(__dirname, 'queue-worker.js');

test('packList: every name comes back once, in order, unicode and empty lists included', () => {
  const names = ['a/b.dcm', 'é/ü/ß.dcm', '日本/画像', '', 'x'.repeat(300)];
  const r = new ListReader(packList(names));
  const got: string[] = [];
  for (let i = r.claim(); i >= 0; i = r.claim()) got.push(r.name(i));
  assert.deepEqual(got, names);
  assert.equal(r.claim(), -1);
  assert.equal(new ListReader(packList([])).claim(), -1);
});

test('ListReader: each worker starts on its own segment, then helps from the back of the fullest one', () => {
  const names = Array.from({ length: 10 }, (_, i) => `n${i}`);
  const list = packList(names, 2);
  const a = new ListReader(list, 0);
  const b = new ListReader(list, 1);
  assert.deepEqual([a.claim(), a.claim(), a.claim()], [0, 1, 2]);
  assert.deepEqual([b.claim(), b.claim()], [5, 6]);
  // a finishes its segment [0, 5), then takes b's segment [7, 10) from the back.
  assert.deepEqual([a.claim(), a.claim(), a.claim(), a.claim()], [3, 4, 9, 8]);
  assert.deepEqual([b.claim(), b.claim(), a.claim()], [7, -1, -1]);
  // More readers than files: everything is still claimed exactly once.
  const small = packList(['x', 'y'], 4);
  const readers = [0, 1, 2, 3].map((k) => new ListReader(small, k));
  const got = readers.flatMap((r) => [r.claim(), r.claim()]).filter((i) => i >= 0);
  assert.deepEqual(got.sort(), [0, 1]);
});

async function runPool(names: string[], size: number): Promise<FileResult[]> {
  const pool = new FileQueuePool(WORKER, size, null);
  const results: FileResult[] = [];
  try {
    await pool.run(names, (rs) => results.push(...rs));
  } finally {
    await pool.close();
  }
  return results;
}

test('FileQueuePool: every file gets exactly one result, shared between workers', async () => {
  const names = Array.from({ length: 1000 }, (_, i) => `f${i}`);
  const results = await runPool(names, 3);
  assert.deepEqual(results.map((r) => r.rel).sort(), [...names].sort());
  assert.ok(results.every((r) => r.outcome === 'written'));
});

test('FileQueuePool: a worker that dies loses only its own files, reported as WORKER_CRASH; the others go on', async () => {
  const names = [...Array.from({ length: 500 }, (_, i) => `f${i}`), 'crash-me', ...Array.from({ length: 500 }, (_, i) => `g${i}`)];
  const results = await runPool(names, 2);
  assert.deepEqual(results.map((r) => r.rel).sort(), [...names].sort(), 'one result per file, none twice');
  const crashed = results.filter((r) => r.code === 'WORKER_CRASH');
  assert.ok(crashed.some((r) => r.rel === 'crash-me'));
  assert.ok(crashed.every((r) => r.outcome === 'quarantined' && /exited with code 3/.test(r.reason ?? '')), JSON.stringify(crashed[0]));
  // The surviving worker finishes the list: every g* file claimed after the crash is written.
  assert.ok(results.filter((r) => r.rel.startsWith('g') && r.outcome === 'written').length >= 400);
});

test('FileQueuePool: when every worker dies, the files left are reported, not dropped', async () => {
  const names = ['crash-1', 'crash-2', 'crash-3', 'a', 'b'];
  const results = await runPool(names, 2);
  assert.deepEqual(results.map((r) => r.rel).sort(), [...names].sort());
  assert.ok(results.filter((r) => r.code === 'WORKER_CRASH').length >= 3);
});
