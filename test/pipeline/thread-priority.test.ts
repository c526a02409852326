/**
 * Per-thread niceness of the gateway's de-identification workers: a worker lowers its own
 * priority, the main thread keeps the process's.
 */
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { lowerThreadPriority } from '../../src/pipeline/thread-priority';

const LINUX = process.platform === 'linux' ? false : 'per-thread niceness is a Linux feature';

test('a worker thread lowers its own priority; the main thread keeps the process priority', { skip: LINUX }, async () => {
  const base = os.getPriority(process.pid);
  const module = path.join(__dirname, '..', '..', 'src', 'pipeline', 'thread-priority.js');
  const code = `
    const { parentPort } = require('node:worker_threads');
    const { lowerThreadPriority } = require(${JSON.stringify(module)});
    const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
    parentPort.postMessage({ got: lowerThreadPriority(5), tid, pid: process.pid });`;
  const reply = await new Promise<{ got: number | null; tid: number; pid: number }>((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    w.once('message', (m) => { resolve(m); void w.terminate(); });
    w.once('error', reject);
  });
  assert.equal(reply.got, Math.min(19, base + 5));
  assert.notEqual(reply.tid, reply.pid, 'a thread of its own');
  assert.equal(os.getPriority(process.pid), base, 'the main thread is unchanged');
  assert.equal(lowerThreadPriority(0), null, '0 means: leave it');
});

test('the gateway config asks for workers 10 steps below the process by default', async () => {
  const { SpoolSchema } = await import('../../src/config/schema');
  assert.equal(SpoolSchema.parse({}).workerNice, 10);
  assert.throws(() => SpoolSchema.parse({ workerNice: 20 }));
});
