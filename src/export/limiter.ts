/**
 * Politeness towards a clinical PACS: at most `maxConcurrent` requests at a time and at most
 * `requestsPerSecond` started per second (a token bucket of one second's worth), shared by every
 * job that uses the source.
 */
export interface LimiterOptions {
  maxConcurrent: number;
  /** 0 = no rate limit. */
  requestsPerSecond: number;
}

export class SourceLimiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private tokens: number;
  private refilledAt = Date.now();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: LimiterOptions) {
    this.tokens = Math.max(1, opts.requestsPerSecond);
  }

  /** Runs `fn` once a slot and a token are free; aborting while waiting rejects with the signal's reason. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.active--;
      this.drain();
    }
  }

  get inUse(): number {
    return this.active;
  }

  private acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(go);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(go);
      this.drain();
    });
  }

  private refill(): void {
    const rate = this.opts.requestsPerSecond;
    if (rate <= 0) return;
    const now = Date.now();
    // At least one token fits: with a rate below 1/s a bucket of `rate` tokens never reaches 1.
    this.tokens = Math.min(Math.max(1, rate), this.tokens + ((now - this.refilledAt) / 1000) * rate);
    this.refilledAt = now;
  }

  private drain(): void {
    while (this.waiting.length && this.active < this.opts.maxConcurrent) {
      this.refill();
      if (this.opts.requestsPerSecond > 0 && this.tokens < 1) {
        if (!this.timer) {
          const waitMs = Math.ceil(((1 - this.tokens) / this.opts.requestsPerSecond) * 1000);
          this.timer = setTimeout(() => {
            this.timer = null;
            this.drain();
          }, waitMs);
        }
        return;
      }
      if (this.opts.requestsPerSecond > 0) this.tokens -= 1;
      this.active++;
      this.waiting.shift()!();
    }
  }
}
