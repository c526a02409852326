import type { DestinationConfig, RetryPolicy } from '../config/schema';
import { ForwardError, PermanentError, TransientError } from './errors';
import { RetryHooks, Sleep, defaultSleep, nextDelay } from './retry';

/** One de-identified instance ready to leave the gateway. */
export interface OutgoingInstance {
  /**
   * Where the complete de-identified Part 10 bytes (preamble, meta group, dataset) are: in
   * memory when `bytes` is set (the de-identify stage hands small instances over without a
   * file), else in the file at `file`. See outgoing.ts.
   */
  file?: string;
  bytes?: Buffer;
  sopClassUid: string;
  sopInstanceUid: string;
  studyUid: string;
  seriesUid: string;
  /** Transfer syntax of the file's dataset (its meta group's (0002,0010)). */
  transferSyntaxUid: string;
  patientPseudonym: string;
}

/**
 * Result of one instance of a batch: `null` when the destination has it, otherwise the error
 * (a `TransientError` to retry, a `PermanentError` to quarantine; anything else is a bug).
 */
export type SendResults = Map<string /* sopInstanceUid */, Error | null>;

export interface Destination {
  readonly name: string;
  /**
   * Sends a batch. The map has one entry per instance of the batch. Throws `TransientError`
   * when the whole batch failed transiently before the destination judged any instance
   * (connection refused, association or HTTP timeout, 5xx for every request): nothing was
   * stored, retry the batch. Instances of a batch may be sent in several requests/associations
   * (STOW-RS: one request per study and size bound); when a later request fails transiently
   * after an earlier one succeeded, the map carries the TransientError for the instances that
   * were not stored.
   */
  send(instances: OutgoingInstance[]): Promise<SendResults>;
  /** Readiness: can the destination be reached and does it answer (C-ECHO, QIDO, writable folder)? */
  probe(): Promise<boolean>;
  /** Releases sockets/agents; the destination is not used afterwards. */
  close(): Promise<void>;
}

/** Where secrets come from: files and environment variables named in the config, never the config itself. */
export interface SecretSource {
  readFile(path: string): string;
  env: NodeJS.ProcessEnv;
}

export function createDestination(name: string, cfg: DestinationConfig, secrets: SecretSource): Destination {
  switch (cfg.type) {
    case 'folder': {
      // Required lazily so that a folder-only deployment never loads the network libraries.
      const { FolderDestination } = require('./folder') as typeof import('./folder');
      return new FolderDestination(name, cfg);
    }
    case 'stow-rs': {
      const { StowRsDestination } = require('./stow-rs') as typeof import('./stow-rs');
      return new StowRsDestination(name, cfg, secrets);
    }
    case 'c-store': {
      const { CStoreDestination } = require('./c-store') as typeof import('./c-store');
      return new CStoreDestination(name, cfg);
    }
  }
}

/**
 * Sends a batch with retries: instances that failed with a TransientError (or a batch that
 * threw one) are sent again after the policy's backoff, the others are final. After
 * `maxAttempts` the last TransientError stays in the map. Never throws for destination
 * failures; an error that is neither transient nor permanent is recorded as it is (final).
 */
export async function sendWithRetry(
  destination: Destination,
  instances: OutgoingInstance[],
  policy: RetryPolicy,
  hooks: RetryHooks = {},
  sleep: Sleep = defaultSleep,
  random: () => number = Math.random,
): Promise<SendResults> {
  const results: SendResults = new Map();
  let pending = instances;
  const max = Math.max(1, Math.floor(policy.maxAttempts));
  for (let attempt = 1; pending.length; attempt++) {
    let round: SendResults;
    try {
      round = await destination.send(pending);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      round = new Map(pending.map((i) => [i.sopInstanceUid, e]));
    }
    const again: OutgoingInstance[] = [];
    let lastTransient: TransientError | undefined;
    for (const inst of pending) {
      const r = round.has(inst.sopInstanceUid)
        ? round.get(inst.sopInstanceUid) ?? null
        : new PermanentError('NO_RESULT', `${destination.name}: no result for ${inst.sopInstanceUid}`);
      results.set(inst.sopInstanceUid, r);
      if (r instanceof TransientError) {
        again.push(inst);
        lastTransient = r;
      }
    }
    if (!again.length || !lastTransient || attempt >= max || hooks.signal?.aborted) break;
    const delay = nextDelay(policy, attempt, random());
    hooks.onRetry?.(attempt, delay, lastTransient);
    await sleep(delay, hooks.signal);
    if (hooks.signal?.aborted) break;
    pending = again;
  }
  return results;
}

export { ForwardError, PermanentError, TransientError };
