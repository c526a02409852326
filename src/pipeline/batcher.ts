import { Destination, OutgoingInstance } from '../forward/destination';

/**
 * Collects instances that are ready at about the same time into one `send` (one STOW-RS
 * request per study, one C-STORE association), flushing when `maxBatch` are waiting or
 * `lingerMs` after the first one. Each caller gets its own instance's result, so retries and
 * quarantine stay per instance.
 */
export class Batcher {
  private queue: { instance: OutgoingInstance; resolve: (e: Error | null) => void; reject: (e: Error) => void }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly destination: Destination, private readonly maxBatch: number, private readonly lingerMs = 20) {}

  send(instance: OutgoingInstance): Promise<Error | null> {
    return new Promise((resolve, reject) => {
      this.queue.push({ instance, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.queue.splice(0, this.maxBatch);
    if (this.queue.length) this.timer = setTimeout(() => this.flush(), 0);
    if (!batch.length) return;
    this.destination.send(batch.map((b) => b.instance)).then(
      (results) => {
        for (const b of batch) {
          const r = results.get(b.instance.sopInstanceUid);
          b.resolve(r === undefined ? new Error(`${this.destination.name}: no result for an instance`) : r);
        }
      },
      (err: Error) => batch.forEach((b) => b.reject(err)),
    );
  }
}
