import type { AuditEvent } from '../audit/events';
import type { Config, RouteConfig } from '../config/schema';
import { defaultSleep } from '../forward/retry';
import type { EntryOutcome } from '../pipeline/pipeline';
import type { SpoolEntry } from '../spool/types';
import { canonicalQuery, describeQuery, ExportRequest, ExportRequestError, parseExportRequest, routeForRequest, sha256 } from './export-request';
import { JobProgress, JobStatus } from './job-progress';
import { JobRunner, RunnerDeps } from './job-runner';
import { JobStore } from './job-store';
import { buildManifest } from './manifest';
import { Arrived } from './spool-sink';
import { ExportSource } from './types';

export interface ManagerDeps {
  config: Config;
  store: JobStore;
  sources: Map<string, ExportSource>;
  spool: RunnerDeps['spool'];
  keyedHash(value: string): string;
  newUid(value: string): string;
  audit(event: AuditEvent): void;
}

interface Expected {
  job: JobProgress;
  arrived(a: Arrived): void;
}

/**
 * Owns every export job: creates them from requests, runs at most `maxRunningJobs` at a time,
 * resumes the unfinished ones at start, and hears from the pipeline (settled entries) and the
 * SCP (C-MOVE arrivals) about their instances.
 */
export class ExportManager {
  private readonly jobs = new Map<string, JobProgress>();
  private readonly queue: JobProgress[] = [];
  private readonly running = new Map<string, AbortController>();
  private readonly done = new Map<string, Promise<void>>();
  private readonly waiters = new Map<string, () => void>();
  /** Original SOP Instance UID -> the job whose C-MOVE asked for it. */
  private readonly expected = new Map<string, Expected>();
  private closing = false;

  constructor(private readonly d: ManagerDeps) {}

  /**
   * Loads the job folders. Must run before the pipeline starts: spooled entries of a job are
   * routed by the job's route and counted by the job, so the job must be known when they come.
   */
  load(): void {
    const { jobs, unreadable } = this.d.store.loadAll();
    for (const job of jobs) this.jobs.set(job.record.id, job);
    for (const id of unreadable) this.d.audit({ type: 'export.unreadable', job: id });
  }

  /** Queues the unfinished jobs again (they skip what their log shows as spooled) and runs them. */
  start(): void {
    for (const job of this.jobs.values()) if (!job.isTerminal() && !this.queue.includes(job)) this.queue.push(job);
    this.pump();
  }

  create(body: unknown, by: string): JobStatus {
    if (this.closing) throw new ExportRequestError('the gateway is stopping');
    const req: ExportRequest = parseExportRequest(body);
    const id = this.d.store.newId();
    const route = routeForRequest(req, this.d.config, id);
    const job = this.d.store.create({ id, createdAt: new Date().toISOString(), requestedBy: by, source: req.source, query: req.query, route });
    this.jobs.set(id, job);
    this.d.audit({
      type: 'export.created', job: id, by, source: req.source, route: route.name, profile: route.profile,
      criteria: describeQuery(req.query), queryHash: this.d.keyedHash(canonicalQuery(req.query)),
    });
    this.queue.push(job);
    this.pump();
    return job.status();
  }

  /**
   * An unfinished job (resumed at start) asking for exactly this: the foreground CLI, run again
   * after a crash with the same arguments, follows it instead of starting a second one.
   */
  findUnfinished(body: unknown): string | undefined {
    const req = parseExportRequest(body);
    const want = canonicalQuery(req.query);
    for (const job of this.jobs.values()) {
      const r = job.record;
      if (job.isTerminal() || r.source !== req.source || canonicalQuery(r.query) !== want) continue;
      const sameRoute = req.route !== undefined
        ? r.route.name === req.route
        : r.route.profile === (req.profile ?? 'pixel-only') && JSON.stringify(r.route.destinations) === JSON.stringify(req.destinations) && JSON.stringify(r.route.options) === JSON.stringify(req.options ?? []);
      if (sameRoute) return r.id;
    }
    return undefined;
  }

  get(id: string): JobStatus | undefined {
    return this.jobs.get(id)?.status();
  }

  list(): JobStatus[] {
    return [...this.jobs.values()].map((j) => j.status());
  }

  /** The written manifest of an ended job; for a running job, the manifest so far. */
  manifest(id: string): unknown {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    return job.isTerminal() ? this.d.store.readManifest(id) : buildManifest(job, job.status());
  }

  /** Stops retrieving; what is already in the spool still goes through the pipeline. */
  cancel(id: string, by: string): JobStatus | undefined {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (job.isTerminal()) return job.status();
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
    this.d.store.append(job, { e: 'state', state: 'cancelled', by }, true);
    this.d.audit({ type: 'export.cancelled', job: id, by });
    this.running.get(id)?.abort(new Error('cancelled'));
    this.finish(job);
    return job.status();
  }

  /** Resolves when the job has reached an end state (tests, the foreground CLI). */
  async whenDone(id: string): Promise<void> {
    while (!this.jobs.get(id)?.isTerminal()) {
      await (this.done.get(id) ?? new Promise((r) => setTimeout(r, 100)));
      if (this.closing) return;
    }
  }

  /** The pipeline asks which route an entry takes: an export job's entries take the job's. */
  routeFor(entry: SpoolEntry): RouteConfig | undefined {
    return entry.meta.job ? this.jobs.get(entry.meta.job)?.record.route : undefined;
  }

  /** The pipeline is done with an entry. */
  settled(entry: SpoolEntry, outcome: EntryOutcome): void {
    const job = entry.meta.job ? this.jobs.get(entry.meta.job) : undefined;
    if (!job) return;
    this.d.store.append(job, {
      e: 'settled',
      spoolId: entry.id,
      outcome: outcome.kind,
      ...(outcome.kind === 'quarantined' || outcome.kind === 'skipped' ? { code: outcome.code } : {}),
      ...(outcome.kind === 'forwarded' ? {
        outputs: outcome.outputs.map((o) => ({
          newStudyUid: o.studyUid, newSeriesUid: o.seriesUid, newSopInstanceUid: o.sopInstanceUid, sopClassUid: o.sopClassUid, pixelSha256: o.pixelSha256After,
        })),
      } : {}),
    });
    if (job.allSettled()) this.waiters.get(job.record.id)?.();
  }

  /** The SCP asks whether an arriving C-STORE is one a job's C-MOVE asked for. */
  attribute(sopInstanceUid: string): string | undefined {
    return this.expected.get(sopInstanceUid)?.job.record.id;
  }

  /** The SCP stored (or quarantined) an instance attributed to a job. */
  arrivedByCMove(sopInstanceUid: string, spoolId: string, bytes: number, quarantinedCode?: string): void {
    const e = this.expected.get(sopInstanceUid);
    if (!e) return;
    this.expected.delete(sopInstanceUid);
    e.arrived({ spoolId, sopInstanceUid, bytes, ...(quarantinedCode ? { quarantinedCode } : {}) });
  }

  /** Stops the running jobs without ending them: the next start resumes them. */
  async close(): Promise<void> {
    this.closing = true;
    for (const c of this.running.values()) c.abort(new Error('shutdown'));
    await Promise.allSettled([...this.done.values()]);
    await Promise.allSettled([...this.d.sources.values()].map((s) => s.close()));
  }

  /** After the pipeline has stopped (it reports settled entries until then). */
  closeLogs(): void {
    this.d.store.close();
  }

  private pump(): void {
    while (!this.closing && this.running.size < this.d.config.exports.maxRunningJobs && this.queue.length) {
      const job = this.queue.shift()!;
      const source = this.d.sources.get(job.record.source);
      if (!source) {
        this.d.store.append(job, { e: 'state', state: 'failed', error: `source "${job.record.source}" is no longer configured` }, true);
        this.finish(job);
        continue;
      }
      const controller = new AbortController();
      this.running.set(job.record.id, controller);
      const p = this.runJob(job, source, controller.signal).finally(() => {
        this.running.delete(job.record.id);
        this.done.delete(job.record.id);
        this.pump();
      });
      this.done.set(job.record.id, p);
    }
  }

  private async runJob(job: JobProgress, source: ExportSource, signal: AbortSignal): Promise<void> {
    const resumed = job.state !== 'queued';
    this.d.store.append(job, { e: 'state', state: 'running' }, true);
    this.d.audit({ type: 'export.started', job: job.record.id, resumed });
    const runner = new JobRunner(this.runnerDeps(), source);
    try {
      await runner.run(job, signal);
      if (job.isTerminal()) return; // cancelled meanwhile
      this.d.store.append(job, { e: 'state', state: job.hasErrors() ? 'completed_with_errors' : 'completed' }, true);
    } catch (err) {
      if (signal.aborted) return; // cancelled (already recorded) or shutdown (resumed next start)
      const e = err as Error & { code?: string };
      this.d.store.append(job, { e: 'state', state: 'failed', error: `${e.code ?? 'ERROR'}: ${e.message}` }, true);
    }
    this.finish(job);
  }

  /** End of a job: manifest next to the record, and the audit summary. */
  private finish(job: JobProgress): void {
    const s = job.status();
    let manifestSha256: string | undefined;
    try {
      const text = JSON.stringify(buildManifest(job, s));
      this.d.store.writeManifest(job.record.id, JSON.parse(text));
      manifestSha256 = sha256(text);
    } catch {
      manifestSha256 = undefined;
    }
    this.d.audit({
      type: 'export.finished', job: job.record.id, state: s.state, studies: s.studies.found,
      instancesFound: s.instances.found, instancesDone: s.instances.done, instancesFailed: s.instances.failed, bytes: s.bytes,
      ...(manifestSha256 ? { manifestSha256 } : {}), ...(s.error ? { error: s.error } : {}),
    });
  }

  private runnerDeps(): RunnerDeps {
    return {
      store: this.d.store,
      spool: this.d.spool,
      limits: this.d.config.exports,
      keyedHash: (v) => this.d.keyedHash(v),
      newUid: (v) => this.d.newUid(v),
      audit: (e) => this.d.audit(e),
      sleep: defaultSleep,
      expect: (job, sops, arrived) => {
        for (const sop of sops) this.expected.set(sop, { job, arrived });
        return () => {
          for (const sop of sops) if (this.expected.get(sop)?.job === job) this.expected.delete(sop);
        };
      },
      settled: (job, signal) => new Promise<void>((resolve, reject) => {
        if (job.allSettled()) return resolve();
        const onAbort = (): void => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiters.set(job.record.id, () => {
          signal.removeEventListener('abort', onAbort);
          this.waiters.delete(job.record.id);
          resolve();
        });
      }),
    };
  }
}
