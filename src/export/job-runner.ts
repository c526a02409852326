import type { AuditEvent } from '../audit/events';
import type { ExportsConfig } from '../config/schema';
import { nextDelay } from '../forward/retry';
import { JobProgress } from './job-progress';
import { JobStore } from './job-store';
import { Arrived, SinkSpool, spoolSink } from './spool-sink';
import { ExportSource, InstanceRef, RetrieveSink, SeriesRef, SourceError, StudyRef } from './types';

export interface RunnerDeps {
  store: JobStore;
  spool: SinkSpool & { hasRoom(): boolean; counts(): { incoming: number } };
  limits: ExportsConfig;
  /** Pseudonymizer.keyedHash: how originals are named in job records. */
  keyedHash(value: string): string;
  /** Pseudonymizer.uid: the de-identified StudyInstanceUID shown for a study. */
  newUid(value: string): string;
  /**
   * C-MOVE sources: announce the instances about to arrive at our SCP for this job, and where
   * they belong (the gateway calls `arrived` when they do); returns the undo.
   */
  expect(job: JobProgress, sopInstanceUids: string[], arrived: (a: Arrived) => void): () => void;
  /** Resolves once every retrieved instance of the job has left the pipeline (or the signal aborts). */
  settled(job: JobProgress, signal: AbortSignal): Promise<void>;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  audit(event: AuditEvent): void;
}

/** One series being retrieved: where its instances go and how their arrival is recorded. */
interface SeriesTask {
  job: JobProgress;
  studyKey: string;
  seriesKey: string;
  series: SeriesRef;
  signal: AbortSignal;
  arrived(a: Arrived): void;
  sink: RetrieveSink;
}

/** A listed instance with the keyed hash of its SOP Instance UID (computed once). */
interface KeyedInstance {
  ref: InstanceRef;
  key: string;
}

const missingOf = (job: JobProgress, instances: KeyedInstance[]): KeyedInstance[] => instances.filter((i) => !job.hasSpooled(i.key));

/** Why a job stopped before its end (the message is free of PHI). */
export class JobFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** Retrieved-but-not-yet-de-identified instances allowed in the spool before retrieving waits. */
const MAX_QUEUED = 2000;

/**
 * Runs one export job: query, then per study the series, then per series the instances still
 * missing (so a resumed job retrieves only what its log does not show as spooled), then waits
 * for the pipeline to settle them. Everything it learns goes to the job's event log first.
 */
export class JobRunner {
  constructor(private readonly d: RunnerDeps, private readonly source: ExportSource) {}

  async run(job: JobProgress, signal: AbortSignal): Promise<void> {
    const studies = await this.attempt(job, signal, 'QUERY_FAILED', () => this.source.findStudies(job.record.query, signal));
    this.d.audit({ type: 'export.found', job: job.record.id, studies: studies.length, studyHashes: studies.map((s) => this.d.keyedHash(s.studyUid)) });
    this.d.store.append(job, {
      e: 'found',
      studies: studies.map((s) => ({
        study: this.d.keyedHash(s.studyUid),
        newStudyUid: this.d.newUid(s.studyUid),
        ...(s.numberOfInstances !== undefined ? { instances: s.numberOfInstances } : {}),
      })),
    }, true);
    for (const study of studies) {
      signal.throwIfAborted();
      await this.study(job, study, signal);
    }
    this.d.store.append(job, { e: 'state', state: 'finishing' }, true);
    await this.d.settled(job, signal);
  }

  private async study(job: JobProgress, study: StudyRef, signal: AbortSignal): Promise<void> {
    const studyKey = this.d.keyedHash(study.studyUid);
    let series: SeriesRef[];
    try {
      series = await this.attempt(job, signal, 'SERIES_QUERY_FAILED', () => this.source.findSeries(study.studyUid, signal));
    } catch (err) {
      if (signal.aborted || !(err instanceof JobFailure)) throw err;
      this.d.store.append(job, { e: 'study-error', study: studyKey, code: err.code, error: err.message });
      this.d.audit({ type: 'export.study-failed', job: job.record.id, studyHash: studyKey, code: err.code });
      return;
    }
    const todo = series.filter((s) => !job.seriesDone(studyKey, this.d.keyedHash(s.seriesUid)));
    await inParallel(todo, this.d.limits.seriesConcurrency, (s) => this.series(job, studyKey, s, signal));
  }

  private async series(job: JobProgress, studyKey: string, series: SeriesRef, signal: AbortSignal): Promise<void> {
    const seriesKey = this.d.keyedHash(series.seriesUid);
    const arrived = (a: Arrived): void => this.arrived(job, studyKey, seriesKey, a);
    const t: SeriesTask = { job, studyKey, seriesKey, series, signal, arrived, sink: spoolSink(this.d.spool, job.record.id, arrived) };
    let failure: JobFailure | undefined;
    let instances: KeyedInstance[] = [];
    try {
      if (await this.wholeSeriesFirst(t)) return this.seriesDone(t, job.spooledIn(studyKey, seriesKey), 0);
      const listed = await this.attempt(job, signal, 'INSTANCE_QUERY_FAILED', () => this.source.findInstances(series.studyUid, series.seriesUid, signal));
      instances = listed.map((ref) => ({ ref, key: this.d.keyedHash(ref.sopInstanceUid) }));
      this.d.store.append(job, { e: 'series', study: studyKey, series: seriesKey, instances: instances.length });
      failure = await this.retrieve(t, instances);
    } catch (err) {
      if (signal.aborted || !(err instanceof JobFailure)) throw err;
      failure = err;
    }
    const missing = instances.length ? missingOf(job, instances).length : series.numberOfInstances ?? 0;
    this.seriesDone(t, instances.length, missing, failure);
  }

  /**
   * A series nothing of which is retrieved yet, from a source that delivers to our sink, is
   * fetched whole at once, without listing its instances first: an instance-level query costs a
   * PACS more than the retrieve itself (bench:export measured 3-4x on Orthanc). True when every
   * instance the series query announced arrived; otherwise the caller lists the instances and
   * retrieves what is missing. C-MOVE needs the SOP Instance UIDs beforehand (to attribute the
   * arrivals), so it always lists.
   */
  private async wholeSeriesFirst(t: SeriesTask): Promise<boolean> {
    const expected = t.series.numberOfInstances ?? 0;
    if (this.source.delivery !== 'sink' || expected <= 0 || t.job.spooledIn(t.studyKey, t.seriesKey) > 0) return false;
    await this.waitForRoom(t.signal);
    try {
      await this.source.retrieveSeries(t.series, t.sink, { signal: t.signal });
    } catch (err) {
      if (t.signal.aborted || !(err instanceof SourceError)) throw err;
      return false; // the listing path retries what is missing, with backoff
    }
    const got = t.job.spooledIn(t.studyKey, t.seriesKey);
    if (got < expected) return false;
    this.d.store.append(t.job, { e: 'series', study: t.studyKey, series: t.seriesKey, instances: got });
    return true;
  }

  private seriesDone(t: SeriesTask, instances: number, missing: number, failure?: JobFailure): void {
    const why = missing && failure ? { code: failure.code, error: failure.message } : missing ? { code: 'NOT_RETRIEVED', error: 'the source did not send every instance it listed' } : {};
    this.d.store.append(t.job, { e: 'series-done', study: t.studyKey, series: t.seriesKey, missing, ...why });
    this.d.audit({
      type: 'export.retrieved', job: t.job.record.id, studyHash: t.studyKey, seriesHash: t.seriesKey, instances, missing,
      ...('code' in why ? { code: why.code } : {}),
    });
  }

  /** Retrieves what is missing until nothing is or the attempts are spent; returns the last failure. */
  private async retrieve(t: SeriesTask, instances: KeyedInstance[]): Promise<JobFailure | undefined> {
    let last: JobFailure | undefined;
    for (let attempt = 1; attempt <= this.d.limits.maxAttempts; attempt++) {
      const missing = missingOf(t.job, instances);
      if (!missing.length) return undefined;
      await this.waitForRoom(t.signal);
      try {
        await this.retrieveOnce(t, missing.map((m) => m.ref), missing.length === instances.length);
        last = undefined;
      } catch (err) {
        if (t.signal.aborted) throw err;
        last = asFailure(err, 'RETRIEVE_FAILED');
        if (!(err instanceof SourceError && err.transient)) return last;
      }
      if (missingOf(t.job, instances).length && attempt < this.d.limits.maxAttempts) await this.backoff(t.job, attempt, last?.code ?? 'NOT_RETRIEVED', t.signal);
    }
    return last;
  }

  private async retrieveOnce(t: SeriesTask, missing: InstanceRef[], whole: boolean): Promise<void> {
    const undo = this.source.delivery === 'c-move'
      ? this.d.expect(t.job, missing.map((i) => i.sopInstanceUid), t.arrived)
      : () => undefined;
    try {
      if (whole) await this.source.retrieveSeries(t.series, t.sink, { signal: t.signal });
      else await this.source.retrieveInstances(missing, t.sink, { signal: t.signal });
    } finally {
      undo();
    }
  }

  /** Called by the sink (WADO-RS, C-GET) and by the gateway's SCP (C-MOVE) once an instance is durable. */
  private arrived(job: JobProgress, studyKey: string, seriesKey: string, a: Arrived): void {
    const sop = a.sopInstanceUid ? this.d.keyedHash(a.sopInstanceUid) : `unreadable-${a.spoolId}`;
    this.d.store.append(job, { e: 'spooled', spoolId: a.spoolId, study: studyKey, series: seriesKey, sop, bytes: a.bytes });
    if (a.quarantinedCode) this.d.store.append(job, { e: 'settled', spoolId: a.spoolId, outcome: 'quarantined', code: a.quarantinedCode });
  }

  /** Retries the source's transient failures with backoff; a permanent one (or the last) becomes a JobFailure. */
  private async attempt<T>(job: JobProgress, signal: AbortSignal, code: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (signal.aborted) throw err;
        const failure = asFailure(err, code);
        if (!(err instanceof SourceError && err.transient) || attempt >= this.d.limits.maxAttempts) throw failure;
        await this.backoff(job, attempt, failure.code, signal);
      }
    }
  }

  private async backoff(job: JobProgress, attempt: number, code: string, signal: AbortSignal): Promise<void> {
    const delayMs = nextDelay({ ...this.d.limits, multiplier: 2, jitter: 0.3 }, attempt, Math.random());
    this.d.store.append(job, { e: 'retry', attempt, delayMs, code });
    await this.d.sleep(delayMs, signal);
    signal.throwIfAborted();
  }

  /** Backpressure: retrieving faster than the pipeline de-identifies would only fill the disk. */
  private async waitForRoom(signal: AbortSignal): Promise<void> {
    while (!this.d.spool.hasRoom() || this.d.spool.counts().incoming > MAX_QUEUED) {
      await this.d.sleep(200, signal);
      signal.throwIfAborted();
    }
  }
}

function asFailure(err: unknown, code: string): JobFailure {
  if (err instanceof JobFailure) return err;
  if (err instanceof SourceError) return new JobFailure(err.status !== undefined ? `${code}_${err.status}` : code, err.message);
  return new JobFailure(code, (err as Error)?.message ?? String(err));
}

/** Runs `fn` over `items` with at most `limit` at a time; the first error stops new starts and is thrown. */
export async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const lane = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failed !== undefined) throw failed;
}
