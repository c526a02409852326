import { JobEvent, JobRecord, JobState, OutputRow, TERMINAL_STATES } from './job-types';

export interface StudyError {
  /** The de-identified StudyInstanceUID (what the research side sees); the original is never shown. */
  newStudyUid: string;
  code: string;
  error: string;
  instances?: number;
}

/** GET /api/exports/:id. */
export interface JobStatus {
  id: string;
  state: JobState;
  error?: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  requestedBy: string;
  source: string;
  route: string;
  profile: string;
  studies: { found: number; done: number; failed: number };
  series: { found: number; retrieved: number };
  instances: { found: number; retrieved: number; done: number; failed: number; pending: number };
  bytes: number;
  /** Instances settled per second over the last minute. */
  rate: number;
  etaSeconds: number | null;
  errors: StudyError[];
}

const RATE_WINDOW_MS = 60_000;

interface SeriesTrack {
  instances: number;
  done: boolean;
  missing: number;
  /** Instances (sop keys) of this series in the spool or beyond. */
  sops: Set<string>;
}

interface StudyTrack {
  newStudyUid: string;
  expected?: number;
  series: Map<string, SeriesTrack>;
  sops: Set<string>;
  error?: { code: string; error: string };
}

/**
 * A job's progress, rebuilt by replaying its event log (after a restart) and updated by each new
 * event. Pure bookkeeping: the store persists, the runner acts.
 */
export class JobProgress {
  state: JobState = 'queued';
  error: string | undefined;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  private readonly studies = new Map<string, StudyTrack>();
  /** Spool entry id -> the instance it holds (one instance may be spooled twice after a crash). */
  private readonly spooled = new Map<string, { sop: string; study: string }>();
  private readonly spooledSops = new Set<string>();
  /** Spool entry id -> how the pipeline ended it. */
  private readonly settled = new Map<string, Extract<JobEvent, { e: 'settled' }>>();
  private bytes = 0;
  /** Spooled entries not settled yet, kept as a count: the pipeline asks after every settle. */
  private unsettled = 0;
  private readonly recentSettles: number[] = [];

  constructor(readonly record: JobRecord) {}

  apply(ev: JobEvent, at: string = new Date().toISOString()): void {
    switch (ev.e) {
      case 'state':
        this.state = ev.state;
        if (ev.state === 'running') this.startedAt ??= at;
        if (TERMINAL_STATES.includes(ev.state)) this.finishedAt = at;
        this.error = ev.error;
        break;
      case 'found':
        for (const s of ev.studies) {
          const t = this.study(s.study, s.newStudyUid);
          if (s.instances !== undefined) t.expected = s.instances;
        }
        break;
      case 'series':
        this.seriesOf(ev.study, ev.series).instances = ev.instances;
        break;
      case 'spooled':
        if (!this.spooledSops.has(ev.sop)) this.bytes += ev.bytes;
        if (!this.spooled.has(ev.spoolId) && !this.settled.has(ev.spoolId)) this.unsettled++;
        this.spooled.set(ev.spoolId, { sop: ev.sop, study: ev.study });
        this.spooledSops.add(ev.sop);
        this.studies.get(ev.study)?.sops.add(ev.sop);
        if (this.studies.has(ev.study)) this.seriesOf(ev.study, ev.series).sops.add(ev.sop);
        break;
      case 'series-done': {
        const s = this.seriesOf(ev.study, ev.series);
        s.done = true;
        s.missing = ev.missing;
        if (ev.missing > 0 && ev.code) this.studies.get(ev.study)!.error ??= { code: ev.code, error: ev.error ?? '' };
        break;
      }
      case 'study-error':
        this.studies.get(ev.study)!.error = { code: ev.code, error: ev.error };
        break;
      case 'settled':
        if (!this.settled.has(ev.spoolId)) {
          this.recentSettles.push(Date.parse(at));
          if (this.spooled.has(ev.spoolId)) this.unsettled--;
        }
        this.settled.set(ev.spoolId, ev);
        break;
      case 'retry':
        break;
    }
  }

  isTerminal(): boolean {
    return TERMINAL_STATES.includes(this.state);
  }

  /** Study keys found by the query, in order. */
  studyKeys(): string[] {
    return [...this.studies.keys()];
  }

  seriesDone(study: string, series: string): boolean {
    return this.studies.get(study)?.series.get(series)?.done ?? false;
  }

  /** Distinct instances of a series retrieved so far. */
  spooledIn(study: string, series: string): number {
    return this.studies.get(study)?.series.get(series)?.sops.size ?? 0;
  }

  hasSpooled(sop: string): boolean {
    return this.spooledSops.has(sop);
  }

  /** Every retrieved instance has been forwarded, quarantined or dropped. */
  allSettled(): boolean {
    return this.unsettled === 0;
  }

  /** Instances (sop keys) by final outcome: delivered wins over a quarantined second copy. */
  private outcomes(): { done: Set<string>; quarantined: Set<string> } {
    const done = new Set<string>();
    const quarantined = new Set<string>();
    for (const [id, s] of this.settled) {
      const sop = this.spooled.get(id)?.sop ?? id;
      (s.outcome === 'quarantined' ? quarantined : done).add(sop);
    }
    for (const sop of done) quarantined.delete(sop);
    return { done, quarantined };
  }

  /** Instances lost on the way: not retrieved, or quarantined. */
  failedInstances(): number {
    let n = this.outcomes().quarantined.size;
    for (const t of this.studies.values()) for (const s of t.series.values()) n += s.missing;
    return n;
  }

  hasErrors(): boolean {
    return this.failedInstances() > 0 || [...this.studies.values()].some((t) => t.error);
  }

  outputs(): OutputRow[] {
    return [...this.settled.values()].flatMap((s) => s.outputs ?? []);
  }

  status(): JobStatus {
    const now = Date.now();
    while (this.recentSettles.length && now - this.recentSettles[0] > RATE_WINDOW_MS) this.recentSettles.shift();
    let found = 0;
    let seriesFound = 0;
    let seriesRetrieved = 0;
    let studiesDone = 0;
    let studiesFailed = 0;
    const errors: StudyError[] = [];
    const { done: doneSops, quarantined: quarantinedSops } = this.outcomes();
    for (const t of this.studies.values()) {
      const listed = [...t.series.values()];
      seriesFound += listed.length;
      seriesRetrieved += listed.filter((s) => s.done).length;
      const known = listed.reduce((n, s) => n + s.instances, 0);
      found += listed.length ? known : t.expected ?? 0;
      const missing = listed.reduce((n, s) => n + s.missing, 0);
      const quarantined = [...t.sops].filter((sop) => quarantinedSops.has(sop)).length;
      if (t.error || missing + quarantined > 0) {
        studiesFailed++;
        errors.push({
          newStudyUid: t.newStudyUid,
          code: t.error?.code ?? 'INSTANCES_QUARANTINED',
          error: t.error?.error ?? `${quarantined} instance(s) quarantined (see GET /api/quarantine)`,
          ...(missing + quarantined ? { instances: missing + quarantined } : {}),
        });
      } else if (listed.length && listed.every((s) => s.done) && [...t.sops].every((sop) => doneSops.has(sop))) {
        studiesDone++;
      }
    }
    const failed = this.failedInstances();
    const done = doneSops.size;
    const rate = this.recentSettles.length / (RATE_WINDOW_MS / 1000);
    const remaining = Math.max(0, found - done - failed);
    const elapsed = this.startedAt ? (now - Date.parse(this.startedAt)) / 1000 : 0;
    // Early on the window is not full: use the rate since start when it is shorter.
    const effective = elapsed > 0 && elapsed < RATE_WINDOW_MS / 1000 ? this.recentSettles.length / elapsed : rate;
    return {
      id: this.record.id,
      state: this.state,
      ...(this.error ? { error: this.error } : {}),
      createdAt: this.record.createdAt,
      ...(this.startedAt ? { startedAt: this.startedAt } : {}),
      ...(this.finishedAt ? { finishedAt: this.finishedAt } : {}),
      requestedBy: this.record.requestedBy,
      source: this.record.source,
      route: this.record.route.name,
      profile: this.record.route.profile,
      studies: { found: this.studies.size, done: studiesDone, failed: studiesFailed },
      series: { found: seriesFound, retrieved: seriesRetrieved },
      instances: { found, retrieved: this.spooledSops.size, done, failed, pending: this.unsettled },
      bytes: this.bytes,
      rate: Math.round(effective * 10) / 10,
      etaSeconds: this.isTerminal() ? 0 : effective > 0 ? Math.round(remaining / effective) : null,
      errors,
    };
  }

  private study(key: string, newStudyUid: string): StudyTrack {
    let t = this.studies.get(key);
    if (!t) {
      t = { newStudyUid, series: new Map(), sops: new Set() };
      this.studies.set(key, t);
    }
    return t;
  }

  private seriesOf(study: string, series: string): SeriesTrack {
    const t = this.studies.get(study);
    if (!t) throw new Error('series event for a study that was not found');
    let s = t.series.get(series);
    if (!s) {
      s = { instances: 0, done: false, missing: 0, sops: new Set() };
      t.series.set(series, s);
    }
    return s;
  }
}
