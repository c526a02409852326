/**
 * Per-thread niceness of the gateway's background threads: a de-identification worker lowers
 * its own priority, the gateway lowers the threads Node started at boot (V8's compiler and GC
 * helpers), and the main thread and libuv's thread pool keep the process's.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { startupThreads } from '../../src/pipeline/startup-threads';
import { lowerThreadPriority, lowerThreadsPriority } from '../../src/pipeline/thread-priority';
import { storescuAsync, waitFor } from '../support/async-peers';
import { startGatewayProcess, testConfig } from '../support/gateway-process';

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

/** A worker thread that reports its thread id and stays until terminated. */
async function idleWorker(): Promise<{ tid: number; worker: Worker }> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    parentPort.postMessage(Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()));
    setInterval(() => undefined, 1000);`;
  const worker = new Worker(code, { eval: true });
  const tid = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { tid, worker };
}

test('lowerThreadsPriority lowers the threads it is given, skips ended ones, and leaves the caller', { skip: LINUX }, async () => {
  const base = os.getPriority(process.pid);
  const { tid, worker } = await idleWorker();
  try {
    const ended = 2 ** 22 + 1; // above the kernel's pid_max: no such thread
    assert.deepEqual(lowerThreadsPriority([tid, ended], 3), [tid]);
    assert.equal(os.getPriority(tid), Math.min(19, base + 3));
    assert.equal(os.getPriority(process.pid), base, 'the calling thread is unchanged');
    assert.deepEqual(lowerThreadsPriority([tid], 0), [], '0 means: leave them');
    assert.equal(os.getPriority(tid), Math.min(19, base + 3));
  } finally {
    await worker.terminate();
  }
});

test('outside the CLI (a test process) no thread is taken for one of Node\'s boot threads', () => {
  assert.deepEqual(startupThreads, []);
});

/** Niceness of every thread of a process, from /proc (field 19 of each task's stat). */
function threadNiceness(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      out.set(Number(t), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

test('a gateway process runs V8\'s boot threads and its workers lowered, its main thread and libuv\'s pool not', { skip: LINUX }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-nice-'));
  const research = path.join(dir, 'research');
  const g = await startGatewayProcess(dir, testConfig(dir, { research: { type: 'folder', path: research } }));
  try {
    // One instance through: the spool's asynchronous file calls start libuv's thread pool.
    const sent = await storescuAsync([path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'samples', 'pydicom__CT_small.dcm')], g.dimsePort);
    assert.equal(sent.status, 0, sent.output);
    await waitFor('the instance in the research folder', async () => (fs.existsSync(research) && fs.readdirSync(research, { recursive: true }).some((f) => String(f).endsWith('.dcm')) ? true : undefined));
    const base = os.getPriority(process.pid);
    const nice = threadNiceness(g.pid);
    assert.equal(nice.get(g.pid), base, 'the main thread (receiving, answering) keeps the priority');
    const lowered = [...nice.values()].filter((n) => n === Math.min(19, base + 10)).length;
    // 2 de-identification workers + V8's platform threads (Node starts 4) + its task scheduler.
    assert.ok(lowered >= 2 + 4, `threads lowered by 10: ${lowered} of ${nice.size}`);
    const others = [...nice].filter(([tid, n]) => tid !== g.pid && n === base);
    assert.ok(others.length >= 1, 'libuv\'s thread pool (started after boot) keeps the priority');
  } finally {
    await g.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
