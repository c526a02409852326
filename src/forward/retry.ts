import type { RetryPolicy } from '../config/schema';
import { TransientError } from './errors';

/**
 * Retry with exponential backoff and jitter. Only `TransientError` is retried: a
 * `PermanentError` (or any other error, which is a bug or an unclassified failure) goes straight
 * to the caller. After `maxAttempts` attempts the last error is rethrown unchanged.
 */

export interface RetryHooks {
  /** Called before each wait: `attempt` is the attempt that just failed (1-based). */
  onRetry?(attempt: number, delayMs: number, err: TransientError): void;
  /** Stops waiting: the last error is rethrown at once (graceful shutdown). */
  signal?: AbortSignal;
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/**
 * Delay after failed attempt `attempt` (1-based): `initialDelayMs * multiplier^(attempt-1)`,
 * capped at `maxDelayMs`, of which the fraction `jitter` is randomised:
 * `delay = cap * (1 - jitter + jitter * random)`. jitter 0 gives the plain exponential
 * schedule; jitter 1 is "full jitter" (uniform in [0, cap)). Pure: `random` is a number in
 * [0, 1), passed in so the schedule can be tested.
 */
export function nextDelay(policy: RetryPolicy, attempt: number, random: number): number {
  const n = Math.max(1, Math.floor(attempt));
  const exp = policy.initialDelayMs * Math.pow(policy.multiplier, n - 1);
  const cap = Math.min(policy.maxDelayMs, Number.isFinite(exp) ? exp : policy.maxDelayMs);
  const j = Math.min(1, Math.max(0, policy.jitter));
  const r = Math.min(1, Math.max(0, random));
  return Math.round(cap * (1 - j + j * r));
}

export const defaultSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
  sleep: Sleep = defaultSleep,
  random: () => number = Math.random,
): Promise<T> {
  const max = Math.max(1, Math.floor(policy.maxAttempts));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof TransientError) || attempt >= max || hooks.signal?.aborted) throw err;
      const delay = nextDelay(policy, attempt, random());
      hooks.onRetry?.(attempt, delay, err);
      await sleep(delay, hooks.signal);
      if (hooks.signal?.aborted) throw err;
    }
  }
}
