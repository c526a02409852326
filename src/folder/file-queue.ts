import { MessagePort, Worker } from 'node:worker_threads';
import type { FileResult } from './process-file';

/**
 * The folder job's work distribution. The main thread lists the input once and shares the
 * list (packed into SharedArrayBuffers, never copied per worker) with every worker; each worker
 * claims the next file with one atomic increment and reports results in batches. No message
 * per file in either direction: workers never wait for the main thread between files, and the
 * main thread wakes up a few times a second instead of once per file.
 */

/** A list of relative paths packed into shared memory: UTF-8 bytes plus end offsets. */
export interface SharedList {
  count: number;
  bytes: SharedArrayBuffer;
  /** Uint32 end offset of each name in `bytes` (names are a few hundred bytes, lists < 4 GB). */
  ends: SharedArrayBuffer;
  /** Int32[1]: index of the next unclaimed file. */
  next: SharedArrayBuffer;
}

export function packList(names: readonly string[]): SharedList {
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
  return { count: names.length, bytes, ends, next: new SharedArrayBuffer(4) };
}

/** The worker side of a SharedList: claims files one at a time until none are left. */
export class ListReader {
  private readonly bytes: Buffer;
  private readonly ends: Uint32Array;
  private readonly next: Int32Array;

  constructor(readonly list: SharedList) {
    this.bytes = Buffer.from(list.bytes);
    this.ends = new Uint32Array(list.ends);
    this.next = new Int32Array(list.next);
  }

  /** The index of the next file nobody has claimed yet, or -1 when the list is done. */
  claim(): number {
    const i = Atomics.add(this.next, 0, 1);
    return i < this.list.count ? i : -1;
  }

  name(i: number): string {
    return this.bytes.toString('utf8', i === 0 ? 0 : this.ends[i - 1], this.ends[i]);
  }
}

/** Main -> worker: the list to work through (sent once). */
export interface StartMessage {
  kind: 'start';
  list: SharedList;
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
    const reader = new ListReader(msg.list);
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
    const list = packList(names);
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
      for (const w of this.workers) {
        if (w.ended) {
          lastError = w.error ?? lastError;
          finish();
          continue;
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
        w.worker.postMessage({ kind: 'start', list } satisfies StartMessage);
      }
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
