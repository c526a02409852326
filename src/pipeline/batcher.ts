import { Destination, OutgoingInstance } from '../forward/destination';

/**
 * Collects instances that are ready at about the same time into one `send` (one STOW-RS
 * request per study, one C-STORE association). Each caller gets its own instance's result, so
 * retries and quarantine stay per instance.
 *
 * When the destination is idle, a batch leaves when `maxBatch` are waiting or `lingerMs` after
 * the first one. At most `maxSending` sends run at once: while they do, instances gather and
 * leave together as soon as one finishes (group commit). So batches grow with the load instead
 * of staying at what a fixed linger catches: every request costs both sides a fixed overhead
 * (measured with Orthanc: the gateway's cost per instance halves from 1 to 5 per request).
 */
export class Batcher {
  private queue: { instance: OutgoingInstance; resolve: (e: Error | null) => void; reject: (e: Error) => void }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sending = 0;

  constructor(
    private readonly destination: Destination,
    private readonly maxBatch: number,
    private readonly lingerMs = 20,
    private readonly maxSending = 2,
  ) {}

  send(instance: OutgoingInstance): Promise<Error | null> {
    return new Promise((resolve, reject) => {
      this.queue.push({ instance, resolve, reject });
      if (this.sending >= this.maxSending) return; // leaves when a send finishes
      if (this.queue.length >= this.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.sending >= this.maxSending) return;
    const batch = this.queue.splice(0, this.maxBatch);
    if (!batch.length) return;
    this.sending++;
    // More waiting and a send free: the next batch leaves too; otherwise a finishing send takes it.
    if (this.queue.length && this.sending < this.maxSending) this.timer = setTimeout(() => this.flush(), 0);
    this.destination.send(batch.map((b) => b.instance)).then(
      (results) => {
        for (const b of batch) {
          const r = results.get(b.instance.sopInstanceUid);
          b.resolve(r === undefined ? new Error(`${this.destination.name}: no result for an instance`) : r);
        }
      },
      (err: Error) => batch.forEach((b) => b.reject(err)),
    ).finally(() => {
      this.sending--;
      // What gathered meanwhile has waited long enough: it goes now.
      if (this.queue.length) this.flush();
    });
  }
}
