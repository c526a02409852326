import { MessagePort, Worker } from 'node:worker_threads';

/** The messages between the pool and a worker script (see `serveWorker`). */
export interface WorkerRequest<Task> {
  jobId: number;
  task: Task;
}
export interface WorkerReply<Result> {
  jobId: number;
  result: Result;
}

/**
 * The worker side: answers every request with `handle(task)`. `handle` must not throw
 * (a worker that dies takes its task with it); it returns an error outcome instead.
 */
export function serveWorker<Task, Result>(port: MessagePort, handle: (task: Task) => Result | Promise<Result>, transfer?: (result: Result) => ArrayBuffer[]): void {
  port.on('message', async (msg: WorkerRequest<Task>) => {
    const reply: WorkerReply<Result> = { jobId: msg.jobId, result: await handle(msg.task) };
    // Transferred, not copied: the buffers must be the result's own (never a pooled slice).
    port.postMessage(reply, transfer?.(reply.result) ?? []);
  });
}

/**
 * A fixed pool of worker threads taking one task at a time each. `run` resolves with the
 * worker's answer; callers bound the number of tasks in flight themselves (backpressure).
 */
export class WorkerPool<Task, Result> {
  private readonly idle: Worker[] = [];
  private readonly queue: { task: Task; resolve: (r: Result) => void; reject: (e: Error) => void }[] = [];
  private readonly pending = new Map<number, { resolve: (r: Result) => void; reject: (e: Error) => void; worker: Worker }>();
  private readonly workers: Worker[] = [];
  private nextId = 0;

  constructor(script: string, size: number, workerData: unknown) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(script, { workerData });
      w.on('message', (msg: WorkerReply<Result>) => {
        const p = this.pending.get(msg.jobId);
        this.pending.delete(msg.jobId);
        this.idle.push(w);
        this.pump();
        p?.resolve(msg.result);
      });
      w.on('error', (err) => this.failWorker(w, err));
      w.on('exit', (code) => code !== 0 && this.failWorker(w, new Error(`worker exited with code ${code}`)));
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  run(task: Task): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      const id = this.nextId++;
      this.pending.set(id, { resolve: job.resolve, reject: job.reject, worker: w });
      w.postMessage({ jobId: id, task: job.task } satisfies WorkerRequest<Task>);
    }
  }

  private failWorker(w: Worker, err: Error): void {
    for (const [id, p] of this.pending) {
      if (p.worker !== w) continue;
      this.pending.delete(id);
      p.reject(err);
    }
  }
}
