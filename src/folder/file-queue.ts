import { MessagePort, Worker } from 'node:worker_threads';
import type { FileResult } from './process-file';

/**
 * The folder job's work distribution. The main thread lists the input once and shares the
 * list (packed into SharedArrayBuffers, never copied per worker) with every worker; workers
 * claim files with atomic operations and report results in batches. No message per file in
 * either direction: workers never wait for the main thread between files, and the main thread
 * wakes up a few times a second instead of once per file.
 *
 * The list is cut into one contiguous segment per worker. A worker takes its own segment from
 * the front, then helps the others from the back of the fullest one. Neighbouring inputs
 * mostly share an output folder, and two threads creating files in one folder contend for
 * its lock (measured: 7% of the CPU spinning in rename/open with a single shared cursor), so
 * workers are kept in different parts of the list as long as possible.
 */

/** A list of relative paths packed into shared memory: UTF-8 bytes plus end offsets. */
export interface SharedList {
  count: number;
  bytes: SharedArrayBuffer;
  /** Uint32 end offset of each name in `bytes` (names are a few hundred bytes, lists < 4 GB). */
  ends: SharedArrayBuffer;
  /** BigInt64 per segment: (hi << 32) | lo, the unclaimed range [lo, hi) of the list. */
  segments: SharedArrayBuffer;
}

export function packList(names: readonly string[], segments = 1): SharedList {
  const encoded = names.map((n) => Buffer.from(n, 'utf8'));
  const total = encoded.reduce((t, b) => t + b.length, 0);
  const bytes = new SharedArrayBuffer(Math.max(1, total));
  const ends = new SharedArrayBuffer(Math.max(4, 4 * names.length));
  const view = Buffer.from(bytes);
  const endsView = new Uint32Array(ends);
  let at = 0;
  encoded.forEach((b, i) => {
    b.copy(view, at);
    at += b.length;
    endsView[i] = at;
  });
  const n = Math.max(1, segments);
  const seg = new SharedArrayBuffer(8 * n);
  const segView = new BigInt64Array(seg);
  for (let k = 0; k < n; k++) segView[k] = pack(Math.floor((names.length * k) / n), Math.floor((names.length * (k + 1)) / n));
  return { count: names.length, bytes, ends, segments: seg };
}

const LOW = 0xffffffffn;
const pack = (lo: number, hi: number): bigint => (BigInt(hi) << 32n) | BigInt(lo);

/** The worker side of a SharedList: claims files one at a time until none are left. */
export class ListReader {
  private readonly bytes: Buffer;
  private readonly ends: Uint32Array;
  private readonly segments: BigInt64Array;

  /** `own`: the segment this reader works through first. */
  constructor(readonly list: SharedList, private readonly own = 0) {
    this.bytes = Buffer.from(list.bytes);
    this.ends = new Uint32Array(list.ends);
    this.segments = new BigInt64Array(list.segments);
  }

  /** The index of a file nobody has claimed yet, or -1 when the whole list is claimed. */
  claim(): number {
    const mine = this.take(this.own % this.segments.length, true);
    if (mine >= 0) return mine;
    for (;;) {
      // Help the segment with the most left, from its back end (away from its owner).
      let best = -1;
      let most = 0;
      for (let k = 0; k < this.segments.length; k++) {
        const v = Atomics.load(this.segments, k);
        const left = Number(v >> 32n) - Number(v & LOW);
        if (left > most) (best = k), (most = left);
      }
      if (best < 0) return -1;
      const i = this.take(best, false);
      if (i >= 0) return i;
    }
  }

  name(i: number): string {
    return this.bytes.toString('utf8', i === 0 ? 0 : this.ends[i - 1], this.ends[i]);
  }

  private take(k: number, front: boolean): number {
    for (;;) {
      const v = Atomics.load(this.segments, k);
      const lo = Number(v & LOW);
      const hi = Number(v >> 32n);
      if (lo >= hi) return -1;
      const next = front ? pack(lo + 1, hi) : pack(lo, hi - 1);
      if (Atomics.compareExchange(this.segments, k, v, next) === v) return front ? lo : hi - 1;
    }
  }
}

/** Main -> worker: the list to work through (sent once). */
export interface StartMessage {
  kind: 'start';
  list: SharedList;
  /** The worker's own segment of the list. */
  segment: number;
}

/** Worker -> main: finished files ([list index, result] pairs), then `done` once the list is empty. */
export type WorkerMessage = { kind: 'results'; results: [number, FileResult][] } | { kind: 'done' };

/** Results are sent when this many have piled up or this much time has passed since the last send. */
const BATCH_FILES = 64;
const BATCH_MS = 100;

/**
 * The worker loop: waits for the list, then claims and handles files until none are left.
 * `handle` must not throw (it returns an error outcome instead); a synchronous handle keeps
 * the whole loop synchronous, an asynchronous one (extract) is awaited file by file.
 */
export function serveFileQueue(port: MessagePort, handle: (rel: string) => FileResult | Promise<FileResult>): void {
  // `on`, not `once`: the listener keeps the worker alive until the pool terminates it.
  let started = false;
  port.on('message', async (msg: StartMessage) => {
    if (started) return;
    started = true;
    const reader = new ListReader(msg.list, msg.segment);
    let batch: [number, FileResult][] = [];
    let sent = Date.now();
    const send = (): void => {
      port.postMessage({ kind: 'results', results: batch } satisfies WorkerMessage);
      batch = [];
      sent = Date.now();
    };
    for (let i = reader.claim(); i >= 0; i = reader.claim()) {
      const r = handle(reader.name(i));
      batch.push([i, r instanceof Promise ? await r : r]);
      if (batch.length >= BATCH_FILES || Date.now() - sent >= BATCH_MS) send();
    }
    if (batch.length) send();
    port.postMessage({ kind: 'done' } satisfies WorkerMessage);
  });
}

/**
 * Starts `size` workers on `script` (which calls serveFileQueue). Workers load while the
 * caller lists the input; `run(names, onResults)` then hands them the list and resolves when
 * every file has a result. A file whose worker died before reporting it (crash, out of memory)
 * gets a WORKER_CRASH result, and so does every file left when no worker is alive.
 */
export class FileQueuePool {
  private readonly workers: { worker: Worker; ended: boolean; error: string | null; onEnd: (() => void) | null; onMessage: ((msg: WorkerMessage) => void) | null }[] = [];

  constructor(script: string, size: number, workerData: unknown) {
    for (let i = 0; i < size; i++) {
      const w: FileQueuePool['workers'][number] = { worker: new Worker(script, { workerData }), ended: false, error: null, onEnd: null, onMessage: null };
      // Listeners from the start: a worker may die while the caller is still listing the input.
      const end = (error: string): void => {
        if (w.ended) return;
        w.ended = true;
        w.error = error;
        w.onEnd?.();
      };
      w.worker.on('message', (msg: WorkerMessage) => w.onMessage?.(msg));
      w.worker.on('error', (err) => end(err.message));
      w.worker.on('exit', (code) => end(`worker exited with code ${code}`));
      this.workers.push(w);
    }
  }

  run(names: readonly string[], onResults: (results: FileResult[]) => void): Promise<void> {
    const list = packList(names, this.workers.length);
    const seen = new Uint8Array(names.length);
    return new Promise((resolve) => {
      let open = this.workers.length;
      let settled = false;
      let lastError = 'worker stopped';
      const finish = (): void => {
        if (--open > 0 || settled) return;
        settled = true;
        const lost: FileResult[] = [];
        seen.forEach((s, i) => {
          if (!s) lost.push({ rel: names[i], outcome: 'quarantined', code: 'WORKER_CRASH', reason: lastError, bytesIn: 0, bytesOut: 0 });
        });
        if (lost.length) onResults(lost);
        resolve();
      };
      this.workers.forEach((w, segment) => {
        if (w.ended) {
          lastError = w.error ?? lastError;
          finish();
          return;
        }
        let done = false;
        w.onEnd = (): void => {
          if (done) return;
          done = true;
          lastError = w.error ?? lastError;
          finish();
        };
        w.onMessage = (msg): void => {
          if (settled || done) return;
          if (msg.kind === 'done') {
            done = true;
            return finish();
          }
          for (const [i] of msg.results) seen[i] = 1;
          onResults(msg.results.map(([, r]) => r));
        };
        w.worker.postMessage({ kind: 'start', list, segment } satisfies StartMessage);
      });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
