import * as fs from 'node:fs';
import { AuditEvent } from '../audit/events';
import { RetryPolicy } from '../config/schema';
import { WorkerPool } from '../folder/worker-pool';
import { Destination } from '../forward/destination';
import { PermanentError } from '../forward/errors';
import { withRetry } from '../forward/retry';
import { SpoolEntry } from '../spool/spool';
import { Batcher } from './batcher';
import { Metrics } from './metrics';
import { RouteConfig } from '../config/schema';
import { EntryResult, EntryTask, RoutedOutput } from './process-entry';

/** The de-identified files the worker wrote for an entry (removed once the entry is done with). */
function outputFiles(result: EntryResult): string[] {
  return result.kind === 'routed' ? result.results.flatMap((r) => (r.kind === 'output' && r.file !== undefined ? [r.file] : [])) : [];
}

/**
 * De-identified bytes held in memory between the workers and the destinations, at most (the
 * rest go through files in the spool's outgoing/ folder). 64 entries of ordinary CT/MR images
 * take a tenth of it; one mammogram or multi-frame study would take it all, and goes by file.
 */
const HANDOFF_BUDGET = 64 << 20;

/** What an entry reserves of the budget: room for two outputs (fan-out) about its own size. */
const reserveFor = (inputBytes: number): number => 2 * inputBytes + (64 << 10);

/** Outputs come from the worker as plain Uint8Arrays (a transferred Buffer loses its class). */
function asBuffers(result: EntryResult): number {
  let held = 0;
  if (result.kind !== 'routed') return held;
  for (const r of result.results) {
    if (r.kind !== 'output' || !r.bytes) continue;
    const u8: Uint8Array = r.bytes;
    r.bytes = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    held += u8.byteLength;
  }
  return held;
}

/** How an entry left the pipeline (told to export jobs, which count their instances). */
export type EntryOutcome =
  | { kind: 'forwarded'; outputs: RoutedOutput[] }
  | { kind: 'skipped'; code: string }
  | { kind: 'dropped'; reason: string }
  | { kind: 'quarantined'; code: string };

/** What the pipeline needs of the spool (the durable queue in src/spool). */
export interface PipelineSpool {
  claim(): SpoolEntry | null;
  onIncoming(listener: () => void): void;
  complete(id: string): Promise<void>;
  quarantine(id: string, stage: string, code: string, reason: string): Promise<unknown>;
  counts(): { incoming: number; processing: number; quarantine: number };
}

export interface PipelineDeps {
  spool: PipelineSpool;
  pool: WorkerPool<EntryTask, EntryResult>;
  destinations: Map<string, Destination>;
  /** Instances per send for each destination (STOW-RS batchSize; 1 when absent). */
  batchSizes?: Map<string, number>;
  retry: RetryPolicy;
  audit: (event: AuditEvent) => void;
  metrics: Metrics;
  maxInFlight: number;
  /** A route that overrides the routing rules for an entry (an export job's route). */
  routeFor?: (entry: SpoolEntry) => RouteConfig | undefined;
  /** Called once an entry is done with (not when a shutdown leaves it in the spool). */
  onSettled?: (entry: SpoolEntry, outcome: EntryOutcome) => void;
}

/**
 * spool -> de-identify (worker threads) -> forward, with at most `maxInFlight` instances
 * between the spool and the destinations (backpressure: the rest waits on disk, not in
 * memory). An entry leaves the spool only when every destination of every route has it, or
 * when it is quarantined; a crash before that sends it again after restart, which is
 * idempotent because the output UIDs are deterministic.
 */
export class Pipeline {
  private inFlight = 0;
  private stopped = false;
  /** Aborts retry waits on shutdown: unfinished entries stay in the spool for the next start. */
  private readonly shutdown = new AbortController();
  private idle: (() => void)[] = [];
  /** Bytes of HANDOFF_BUDGET reserved by entries at the workers or held by entries being forwarded. */
  private held = 0;

  private readonly batchers = new Map<string, Batcher>();

  constructor(private readonly d: PipelineDeps) {
    for (const [name, dest] of d.destinations) this.batchers.set(name, new Batcher(dest, d.batchSizes?.get(name) ?? 1));
  }

  start(): void {
    this.d.spool.onIncoming(() => this.pump());
    this.pump();
  }

  /** Stops taking new entries; resolves when the ones in flight are done. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.shutdown.abort();
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  get busy(): number {
    return this.inFlight;
  }

  private pump(): void {
    while (!this.stopped && this.inFlight < this.d.maxInFlight) {
      const entry = this.d.spool.claim();
      if (!entry) break;
      this.inFlight++;
      this.updateDepth();
      void this.handle(entry)
        .catch(async (err: Error): Promise<EntryOutcome> => {
          await this.quarantine(entry.id, 'pipeline', 'INTERNAL_ERROR', err.message);
          return { kind: 'quarantined', code: 'INTERNAL_ERROR' };
        })
        .then((outcome) => {
          if (outcome) this.d.onSettled?.(entry, outcome);
        })
        .catch(() => undefined) // a failing listener must not stop the pump
        .finally(() => {
          this.inFlight--;
          this.updateDepth();
          if (this.inFlight === 0 && this.stopped) this.idle.splice(0).forEach((r) => r());
          else this.pump();
        });
    }
  }

  private updateDepth(): void {
    const c = this.d.spool.counts();
    this.d.metrics.queueDepth.set({ state: 'incoming' }, c.incoming);
    this.d.metrics.queueDepth.set({ state: 'processing' }, c.processing);
    this.d.metrics.queueDepth.set({ state: 'quarantine' }, c.quarantine);
  }

  /** Resolves with how the entry ended, or null when a shutdown left it in the spool. */
  private async handle(entry: SpoolEntry): Promise<EntryOutcome | null> {
    const end = this.d.metrics.deidSeconds.startTimer();
    const route = this.d.routeFor?.(entry);
    const reserved = this.reserve(entry);
    let result: EntryResult;
    let held = 0;
    try {
      result = await this.d.pool.run({
        id: entry.id, file: entry.file, callingAE: entry.meta.callingAE, calledAE: entry.meta.calledAE, peer: entry.meta.peer, ...(route ? { route } : {}),
        memoryBytes: reserved,
      });
      // Keep only what the outputs in memory take; they are released with the entry below.
      held = asBuffers(result);
    } finally {
      this.held -= reserved - held;
    }
    end();
    try {
      if (result.kind === 'unreadable') {
        await this.quarantine(entry.id, 'deidentify', result.code, result.reason);
        return { kind: 'quarantined', code: result.code };
      }
      if (result.kind === 'dropped') {
        this.d.metrics.dropped.inc();
        this.d.audit({ type: 'instance.dropped', spoolId: entry.id, route: result.route ?? '(none)', reason: result.reason });
        await this.d.spool.complete(entry.id);
        return { kind: 'dropped', reason: result.reason };
      }
      const refused = result.results.find((r) => r.kind === 'quarantine');
      if (refused && refused.kind !== 'output') {
        await this.quarantine(entry.id, 'deidentify', refused.code, `route ${refused.route}: ${refused.reason}`);
        return { kind: 'quarantined', code: refused.code };
      }
      const outputs: RoutedOutput[] = [];
      for (const r of result.results) {
        if (r.kind === 'skip') this.d.audit({ type: 'instance.skipped', spoolId: entry.id, route: r.route, code: r.code, reason: r.reason });
        if (r.kind !== 'output') continue;
        this.d.metrics.deidentified.inc({ route: r.route });
        this.d.audit({
          type: 'instance.deidentified', spoolId: entry.id, route: r.route, profile: r.profile, options: r.options,
          removed: r.stats.removed, replaced: r.stats.replaced + r.stats.cleaned + r.stats.shifted, remapped: r.stats.remapped,
          newStudyUid: r.studyUid, newSeriesUid: r.seriesUid, newSopInstanceUid: r.sopInstanceUid,
          ...(r.pixelSha256Before ? { pixelSha256Before: r.pixelSha256Before } : {}),
          ...(r.pixelSha256After ? { pixelSha256After: r.pixelSha256After } : {}),
          originalStudyHash: result.originalStudyHash, originalSopHash: result.originalSopHash,
        });
        for (const name of r.destinations) {
          const failure = await this.forward(entry.id, name, r);
          // Stopping: leave the entry in processing/, the next start sends it again (idempotent).
          if (failure && this.shutdown.signal.aborted) return null;
          if (failure) {
            await this.quarantine(entry.id, 'forward', failure.code, `destination ${name}: ${failure.message}`);
            return { kind: 'quarantined', code: failure.code };
          }
        }
        outputs.push(r);
      }
      await this.d.spool.complete(entry.id);
      const skipped = result.results.find((r) => r.kind === 'skip');
      return outputs.length || !skipped || skipped.kind === 'output' ? { kind: 'forwarded', outputs } : { kind: 'skipped', code: skipped.code };
    } finally {
      this.held -= held;
      // Off the main thread: synchronous deletes were 5-7% of it under load (bench:gateway).
      await Promise.all(outputFiles(result).map((f) => fs.promises.unlink(f).catch(() => undefined)));
    }
  }

  /** Reserves room for an entry's outputs in memory: 0 (files) when the budget is used up. */
  private reserve(entry: SpoolEntry): number {
    let size: number;
    try {
      size = fs.statSync(entry.file).size;
    } catch {
      return 0; // the worker reports the missing file
    }
    const want = Math.min(reserveFor(size), HANDOFF_BUDGET - this.held);
    if (want < size) return 0;
    this.held += want;
    return want;
  }

  /** Sends one output to one destination with the retry policy; null on success. */
  private async forward(spoolId: string, name: string, r: RoutedOutput): Promise<{ code: string; message: string } | null> {
    const batcher = this.batchers.get(name)!;
    const end = this.d.metrics.forwardSeconds.startTimer({ destination: name });
    let attempts = 0;
    try {
      await withRetry(async (attempt) => {
        attempts = attempt;
        const err = await batcher.send(r);
        if (err) throw err;
      }, this.d.retry, {
        signal: this.shutdown.signal,
        onRetry: (attempt, delayMs, err) => {
          this.d.metrics.retries.inc({ destination: name });
          this.d.audit({ type: 'instance.retry', spoolId, destination: name, attempt, delayMs, error: err.message });
        },
      });
      end();
      this.d.metrics.forwarded.inc({ destination: name });
      this.d.audit({ type: 'instance.forwarded', spoolId, destination: name, newSopInstanceUid: r.sopInstanceUid, status: 0, attempts });
      return null;
    } catch (err) {
      end();
      const code = err instanceof PermanentError ? err.code : 'RETRIES_EXHAUSTED';
      return { code, message: (err as Error).message };
    }
  }

  private async quarantine(id: string, stage: string, code: string, reason: string): Promise<void> {
    await this.d.spool.quarantine(id, stage, code, reason);
    this.d.metrics.quarantined.inc({ stage, code });
    this.d.audit({ type: 'instance.quarantined', spoolId: id, stage, code, reason });
  }
}
