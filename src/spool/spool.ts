/**
 * The durable queue between ingest and de-identification. On-disk layout, commit order and
 * crash rules are in README.md beside this file; in short: an entry is `<state>/<id>.dcm` plus a
 * `<id>.json` sidecar, the sidecar always lands (and is made durable) first, and the rename of
 * the .dcm is the single commit point of every move.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { DicomParseError } from '../dicom/errors';
import { validateInstanceFile } from '../io/instance-file';
import { DirSyncer, isErrno, newEntryId, unlinkIfThere, writeFileDurable } from './durable';
import { idsIn, recover } from './recovery';
import { TempFileWriter } from './writer';
import {
  CommitResult, QuarantineInfo, ReceiveMeta, SpoolEntry, SpoolError, SpoolOptions, SpoolState, SpoolWriter,
} from './types';

export * from './types';

/** Sidecar of an entry; in quarantine/ it also has stage, code, reason and at. */
interface Sidecar {
  id: string;
  meta: ReceiveMeta;
  stage?: string;
  code?: string;
  reason?: string;
  at?: string;
}

const ROOM_CACHE_MS = 1000;

export class Spool {
  /** Oldest first: claim() takes [0]. */
  private readonly incoming: string[] = [];
  private readonly processing = new Set<string>();
  private readonly quarantined = new Set<string>();
  private readonly listeners: (() => void)[] = [];
  private room: { at: number; ok: boolean } | null = null;
  /** Receive meta of entries committed by this process: claim() need not read their sidecars back. */
  private readonly metas = new Map<string, ReceiveMeta>();
  private tmpCounter = 0;
  private notifyScheduled = false;
  private readonly dirs = new DirSyncer();

  private constructor(readonly dir: string, private readonly opts: SpoolOptions) {}

  /**
   * Creates the folders and recovers from any crash. One Spool per directory at a time: recovery
   * moves processing/ back to incoming/, which would steal work from a live second process.
   */
  static async open(dir: string, opts: SpoolOptions): Promise<Spool> {
    const spool = new Spool(path.resolve(dir), opts);
    for (const s of ['incoming', 'processing', 'quarantine', 'tmp']) fs.mkdirSync(spool.path(s), { recursive: true });
    recover(spool.dir, opts.fsync);
    spool.incoming.push(...idsIn(spool.path('incoming'), '.dcm'));
    for (const id of idsIn(spool.path('quarantine'), '.dcm')) spool.quarantined.add(id);
    return spool;
  }

  /** False when the disk is past the high-water mark or below the free-space floor. */
  hasRoom(): boolean {
    const now = Date.now();
    if (this.room && now - this.room.at < ROOM_CACHE_MS) return this.room.ok;
    let ok: boolean;
    try {
      const s = fs.statfsSync(this.dir);
      const usedPercent = s.blocks > 0 ? (1 - s.bfree / s.blocks) * 100 : 0;
      const freeMB = (s.bavail * s.bsize) / (1 << 20);
      ok = usedPercent < this.opts.highWaterPercent && freeMB >= this.opts.minFreeMB;
    } catch {
      ok = false; // not knowing is not a reason to accept bytes we may be unable to keep
    }
    this.room = { at: now, ok };
    return ok;
  }

  openWriter(meta: ReceiveMeta, prefix?: Buffer): SpoolWriter {
    const id = newEntryId();
    // The sidecar goes straight into incoming/ and is made durable while the bytes arrive, so a
    // commit waits for two fsyncs (data, then the directory after the rename), not four. Until
    // its .dcm is renamed beside it, it is an orphan, which recovery deletes.
    const sidecar = this.writeSidecarEarly(id, meta);
    sidecar.catch(() => undefined); // awaited in publish() or dropped by abort()
    try {
      return new TempFileWriter(id, this.file('tmp', id, '.part'), this.opts.fsync, (w) => this.publish(w, meta, sidecar), prefix, () => this.dropEarlySidecar(id, sidecar), validateInstanceFile);
    } catch (err) {
      void this.dropEarlySidecar(id, sidecar);
      throw err;
    }
  }

  private async writeSidecarEarly(id: string, meta: ReceiveMeta): Promise<void> {
    // Written in place, not through tmp/ + rename: until the .dcm is renamed beside it (after
    // this resolved), a sidecar, whole or cut short by a crash, is an orphan recovery deletes.
    await writeFileDurable(this.file('incoming', id, '.json'), JSON.stringify({ id, meta } satisfies Sidecar) + '\n', this.opts.fsync);
    if (this.opts.fsync) await this.dirs.sync(this.path('incoming'));
  }

  private async dropEarlySidecar(id: string, sidecar: Promise<void>): Promise<void> {
    await sidecar.catch(() => undefined);
    await unlinkIfThere(this.file('incoming', id, '.json'));
  }

  async acceptFile(bytes: Buffer, meta: ReceiveMeta): Promise<CommitResult> {
    const w = this.openWriter(meta);
    w.write(bytes);
    return w.commit();
  }

  /** Oldest incoming entry, moved to processing/. Sync, so two callers never get the same one. */
  claim(): SpoolEntry | null {
    while (this.incoming.length) {
      const id = this.incoming.shift()!;
      // The .dcm moves first: its rename is the claim, and a crash before the sidecar follows
      // is undone by recovery (which moves the .dcm back beside its sidecar).
      try {
        fs.renameSync(this.file('incoming', id, '.dcm'), this.file('processing', id, '.dcm'));
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue; // removed behind our back: nothing to do
        this.incoming.unshift(id);
        throw err;
      }
      const meta = this.metas.get(id) ?? this.readSidecarSync('incoming', id, 'processing').meta;
      this.metas.delete(id);
      try {
        fs.renameSync(this.file('incoming', id, '.json'), this.file('processing', id, '.json'));
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      this.processing.add(id);
      return this.entry(id, 'processing', meta);
    }
    return null;
  }

  /** Called after each commit and release; a listener added while there is backlog also runs once soon. */
  onIncoming(listener: () => void): void {
    this.listeners.push(listener);
    if (this.incoming.length) setImmediate(() => this.call(listener));
  }

  /** Releases the directory handles kept for fsync (after the last commit). */
  async close(): Promise<void> {
    await this.dirs.close();
  }

  /**
   * Done with an entry. Not fsync'd: if a power loss undoes the unlink, the entry is simply
   * processed again, which deterministic output UIDs make harmless.
   */
  async complete(id: string): Promise<void> {
    this.take(this.processing, id, 'processing');
    await unlinkIfThere(this.file('processing', id, '.dcm'));
    await unlinkIfThere(this.file('processing', id, '.json'));
  }

  /** Moves a processing (or still incoming) entry to quarantine/ with the reason beside it. */
  async quarantine(id: string, stage: string, code: string, reason: string): Promise<SpoolEntry> {
    let from: SpoolState;
    if (this.processing.has(id)) from = 'processing';
    else if (this.incoming.includes(id)) from = 'incoming';
    else throw new SpoolError('NOT_FOUND', `no processing or incoming spool entry ${id}`);
    this.take(from === 'processing' ? this.processing : this.incoming, id, from);
    this.metas.delete(id);
    const meta = this.readSidecarSync(from, id).meta;
    const side: Sidecar = { id, stage, code, reason, meta, at: new Date().toISOString() };
    try {
      await this.move(this.file(from, id, '.dcm'), from, 'quarantine', id, side);
    } catch (err) {
      this.put(from, id);
      throw err;
    }
    this.quarantined.add(id);
    return this.entry(id, 'quarantine', meta);
  }

  async listQuarantine(): Promise<QuarantineInfo[]> {
    const out: QuarantineInfo[] = [];
    for (const id of [...this.quarantined].sort()) {
      const side = this.readSidecarSync('quarantine', id);
      const bytes = await fsp.stat(this.file('quarantine', id, '.dcm')).then((s) => s.size, () => 0);
      out.push({ id, stage: side.stage ?? 'unknown', code: side.code ?? 'UNKNOWN', reason: side.reason ?? '', at: side.at ?? '', bytes });
    }
    return out;
  }

  /** Back to incoming/ for another run (keeps the original receive meta). */
  async release(id: string): Promise<void> {
    this.take(this.quarantined, id, 'quarantine');
    const meta = this.readSidecarSync('quarantine', id).meta;
    try {
      await this.move(this.file('quarantine', id, '.dcm'), 'quarantine', 'incoming', id, { id, meta });
    } catch (err) {
      this.quarantined.add(id);
      throw err;
    }
    this.put('incoming', id);
    this.notify();
  }

  async purge(id: string): Promise<void> {
    this.take(this.quarantined, id, 'quarantine');
    // .dcm first: a sidecar left alone is deleted by recovery, a .dcm alone would come back.
    await unlinkIfThere(this.file('quarantine', id, '.dcm'));
    await unlinkIfThere(this.file('quarantine', id, '.json'));
    if (this.opts.fsync) await this.dirs.sync(this.path('quarantine'));
  }

  counts(): { incoming: number; processing: number; quarantine: number } {
    return { incoming: this.incoming.length, processing: this.processing.size, quarantine: this.quarantined.size };
  }

  // ---------------------------------------------------------------- internals

  /** Second half of SpoolWriter.commit(): the temp file is complete, fsync'd and closed. */
  private async publish(w: TempFileWriter, meta: ReceiveMeta, sidecar: Promise<void>): Promise<CommitResult> {
    const { id, partFile } = w;
    let bad: DicomParseError | null = null;
    try {
      // Checked by the writer while the fsync ran (validateInstanceFile is its check hook).
      if (w.checked === undefined) validateInstanceFile(partFile);
      else if (w.checked !== null) throw w.checked;
    } catch (err) {
      if (!(err instanceof DicomParseError)) {
        await unlinkIfThere(partFile);
        await this.dropEarlySidecar(id, sidecar);
        throw err;
      }
      bad = err;
    }
    try {
      if (bad) {
        await this.dropEarlySidecar(id, sidecar);
        const side: Sidecar = { id, stage: 'ingest', code: bad.code, reason: bad.message, meta, at: new Date().toISOString() };
        await this.move(partFile, null, 'quarantine', id, side);
        this.quarantined.add(id);
        return { status: 'quarantined', entry: this.entry(id, 'quarantine', meta), code: bad.code, reason: bad.message };
      }
      await sidecar;
      // The commit point: the .dcm beside its (durable) sidecar. A rename needs no disk until
      // the directory fsync: done here, not through the thread pool, on the sender's wait.
      fs.renameSync(partFile, this.file('incoming', id, '.dcm'));
      if (this.opts.fsync) await this.dirs.sync(this.path('incoming'));
    } catch (err) {
      await unlinkIfThere(partFile);
      await this.dropEarlySidecar(id, sidecar);
      throw err;
    }
    this.metas.set(id, meta);
    this.put('incoming', id);
    this.notify();
    return { status: 'stored', entry: this.entry(id, 'incoming', meta) };
  }

  /**
   * Moves an entry's .dcm from `src` into `to`, with a new sidecar. Order (each step durable
   * before the next when fsync is on): sidecar into `to`; rename of the .dcm (the commit point);
   * old sidecar removed. A crash before the rename leaves a sidecar without .dcm, which recovery
   * deletes; after it, a stale old sidecar, which recovery deletes too.
   */
  private async move(src: string, from: SpoolState | null, to: SpoolState, id: string, side: Sidecar): Promise<void> {
    const fsync = this.opts.fsync;
    const tmp = this.path('tmp', `${id}.${++this.tmpCounter}.json`);
    await writeFileDurable(tmp, JSON.stringify(side) + '\n', fsync);
    await fsp.rename(tmp, this.file(to, id, '.json'));
    if (fsync) await this.dirs.sync(this.path(to));
    try {
      await fsp.rename(src, this.file(to, id, '.dcm'));
    } catch (err) {
      // The entry stays where it was; our new sidecar would be an orphan until the next recovery.
      await unlinkIfThere(this.file(to, id, '.json'));
      throw err;
    }
    if (fsync) await this.dirs.sync(this.path(to));
    if (from) await unlinkIfThere(this.file(from, id, '.json'));
  }

  /**
   * Reads `<state>/<id>.json`. A .dcm without a readable sidecar can only come from a sidecar lost
   * to a power failure with fsync off, or a file put there by hand: it is treated as a folder
   * import received at the file's mtime. `alt` is where the .dcm already is (claim moves it first).
   */
  private readSidecarSync(state: SpoolState, id: string, alt: SpoolState = state): Sidecar {
    try {
      const side = JSON.parse(fs.readFileSync(this.file(state, id, '.json'), 'utf8')) as Sidecar;
      if (side && typeof side.meta?.source === 'string' && typeof side.meta.receivedAt === 'string') return side;
    } catch {
      /* missing or unreadable: fall through */
    }
    let receivedAt = new Date().toISOString();
    try {
      receivedAt = fs.statSync(this.file(alt, id, '.dcm')).mtime.toISOString();
    } catch {
      /* keep now */
    }
    return { id, meta: { source: 'folder', receivedAt } };
  }

  private take(set: Set<string> | string[], id: string, state: SpoolState): void {
    if (Array.isArray(set)) {
      const i = set.indexOf(id);
      if (i >= 0) return void set.splice(i, 1);
    } else if (set.delete(id)) return;
    throw new SpoolError('NOT_FOUND', `no ${state} spool entry ${id}`);
  }

  /** Adds to an index; incoming stays sorted so claim() takes the oldest id. */
  private put(state: SpoolState, id: string): void {
    if (state === 'processing') return void this.processing.add(id);
    if (state === 'quarantine') return void this.quarantined.add(id);
    const a = this.incoming;
    let lo = 0, hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] < id) lo = mid + 1; else hi = mid;
    }
    a.splice(lo, 0, id);
  }

  /**
   * Listeners run once after the current turn, however many commits it saw: the caller of the
   * commit (the DIMSE layer answering the sender, who waits for that answer) goes first; the
   * pipeline's claim and hand-off to a worker come after it.
   */
  private notify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      for (const l of this.listeners) this.call(l);
    });
  }

  /** A listener's bug must not turn a durable commit into a failure answered to the sender. */
  private call(l: () => void): void {
    try {
      l();
    } catch (err) {
      process.emitWarning(`spool onIncoming listener threw: ${(err as Error).message}`);
    }
  }

  private entry(id: string, state: SpoolState, meta: ReceiveMeta): SpoolEntry {
    return { id, file: this.file(state, id, '.dcm'), meta, state };
  }

  private path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  private file(state: SpoolState | 'tmp', id: string, ext: string): string {
    return path.join(this.dir, state, id + ext);
  }
}
