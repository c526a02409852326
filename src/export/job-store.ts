/**
 * Export jobs on disk, one folder per job:
 *   <dir>/<id>/job.json      what was asked (JobRecord, written once, 0600: the query is PHI)
 *   <dir>/<id>/events.jsonl  append-only progress (JobEvent + time), replayed at start
 *   <dir>/<id>/manifest.json written when the job ends (new UIDs, profile, pixel hashes)
 * A torn last line (crash mid-append) is ignored at replay: the work it recorded is found
 * again (re-listed, re-retrieved), and deterministic UIDs make a second send harmless.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsyncDirSync, newEntryId, SAFE_ID } from '../spool/durable';
import { JobProgress } from './job-progress';
import { JobEvent, JobRecord } from './job-types';

export class JobStore {
  /** The open event log of each job written to since start (one open per job, not per event). */
  private readonly logs = new Map<string, number>();

  /** The folder is made with the first job: a gateway without export jobs needs no writable exports.dir. */
  constructor(readonly dir: string) {}

  newId(): string {
    return `exp-${newEntryId()}`;
  }

  create(record: JobRecord): JobProgress {
    const jobDir = this.jobDir(record.id);
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(jobDir, { mode: 0o700 });
    const tmp = path.join(jobDir, 'job.json.tmp');
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(record, null, 2));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path.join(jobDir, 'job.json'));
    fsyncDirSync(jobDir);
    const progress = new JobProgress(record);
    this.append(progress, { e: 'state', state: 'queued' }, true);
    return progress;
  }

  /** Appends and applies an event; `durable` fsyncs (state changes), the rest may be redone after a crash. */
  append(job: JobProgress, ev: JobEvent, durable = false): void {
    const t = new Date().toISOString();
    const fd = this.log(job.record.id);
    fs.writeSync(fd, `${JSON.stringify({ t, ...ev })}\n`);
    if (durable) fs.fsyncSync(fd);
    job.apply(ev, t);
    if (job.isTerminal()) this.closeLog(job.record.id);
  }

  close(): void {
    for (const id of [...this.logs.keys()]) this.closeLog(id);
  }

  private log(id: string): number {
    let fd = this.logs.get(id);
    if (fd === undefined) {
      fd = fs.openSync(path.join(this.jobDir(id), 'events.jsonl'), 'a', 0o600);
      this.logs.set(id, fd);
    }
    return fd;
  }

  private closeLog(id: string): void {
    const fd = this.logs.get(id);
    if (fd === undefined) return;
    this.logs.delete(id);
    fs.closeSync(fd);
  }

  /** Every job folder with a readable job.json, its events replayed; unreadable folders are skipped and named. */
  loadAll(): { jobs: JobProgress[]; unreadable: string[] } {
    const jobs: JobProgress[] = [];
    const unreadable: string[] = [];
    if (!fs.existsSync(this.dir)) return { jobs, unreadable };
    for (const id of fs.readdirSync(this.dir).sort()) {
      if (!SAFE_ID.test(id)) continue;
      try {
        jobs.push(this.load(id));
      } catch {
        unreadable.push(id);
      }
    }
    return { jobs, unreadable };
  }

  writeManifest(id: string, manifest: unknown): string {
    const file = path.join(this.jobDir(id), 'manifest.json');
    fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
    return file;
  }

  readManifest(id: string): unknown {
    return JSON.parse(fs.readFileSync(path.join(this.jobDir(id), 'manifest.json'), 'utf8'));
  }

  private load(id: string): JobProgress {
    const record = JSON.parse(fs.readFileSync(path.join(this.jobDir(id), 'job.json'), 'utf8')) as JobRecord;
    if (record.id !== id) throw new Error('job.json id does not match its folder');
    const job = new JobProgress(record);
    let text = '';
    try {
      text = fs.readFileSync(path.join(this.jobDir(id), 'events.jsonl'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      let parsed: ({ t: string } & JobEvent) | undefined;
      try {
        parsed = JSON.parse(line) as { t: string } & JobEvent;
      } catch {
        continue; // a torn line from a crash mid-append
      }
      const { t, ...ev } = parsed;
      job.apply(ev as JobEvent, t);
    }
    return job;
  }

  private jobDir(id: string): string {
    if (!SAFE_ID.test(id)) throw new Error('invalid job id');
    return path.join(this.dir, id);
  }
}
