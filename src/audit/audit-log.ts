import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as winston from 'winston';
import { entryHash, normalizeEvent, ZERO_HASH } from './chain';
import { AuditEntry, AuditEvent } from './events';
import { lastValidEntry, linesBackward, rotatedSiblings } from './files';
import { AuditQuery, findIn, releaseSnapshot, searchIn, Snapshot, takeSnapshot } from './query';

export interface AuditLogOptions {
  /** Also write every line to stdout (winston Console transport), for the log collector. */
  stdout: boolean;
  /** The current audit file (e.g. /var/lib/deid/audit.jsonl); none = stdout only. */
  file?: string;
  /** Rotate before a line would take the file past this size. Fractions are allowed (tests). */
  maxFileMB: number;
  /**
   * fdatasync the file at most this long after a write; 0 = after every entry.
   * @defaultValue 100
   */
  syncIntervalMs?: number;
}

/**
 * The tamper-evident audit log: JSON lines, each carrying `hash = sha256(prevHash + canonical JSON
 * of the entry without hash)`, so editing, deleting or reordering any line breaks the chain
 * (`verifyAuditFiles`). The chain continues across restarts (it resumes from the last valid entry
 * on disk) and across rotation (the new file's first prevHash is the old file's last hash).
 *
 * Why the file is NOT written through winston's File transport: that transport is a stream, so an
 * entry `write` has returned may still sit in memory when the process dies, and its rotation
 * renames files on its own schedule and naming. Here each line is appended with one synchronous
 * write(2) on an O_APPEND fd before `write` returns: a process crash can neither lose nor reorder
 * an entry a caller has seen. fdatasync after every entry costs ~3 ms on this project's disk
 * (~350 entries/s, below the ~1000/s needed), so the file is fdatasync'ed at most
 * `syncIntervalMs` after a write, and at rotation and close: an OS crash or power loss can lose
 * only that last interval, never reorder; a line torn by it is cut off and recorded
 * (`audit.recovered`) at the next start. `sync()` forces it when a caller needs it now.
 * winston does carry the stdout copy (Console transport), where the logging stack collects it.
 *
 * One writer per file: two processes appending to one file would fork the chain.
 */
export class AuditLog {
  private fd: number | undefined;
  private size = 0;
  private seq = 0;
  private prevHash = ZERO_HASH;
  private closed = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private readonly maxBytes: number;
  private readonly syncIntervalMs: number;
  private readonly logger: winston.Logger | undefined;

  private constructor(private readonly opts: AuditLogOptions) {
    this.maxBytes = Math.max(1, Math.floor(opts.maxFileMB * 1024 * 1024));
    this.syncIntervalMs = opts.syncIntervalMs ?? 100;
    this.logger = opts.stdout
      ? winston.createLogger({
          level: 'info',
          // The line as written to the file, byte for byte: the collector's copy verifies too.
          format: winston.format.printf((info) => String(info.message)),
          transports: [new winston.transports.Console()],
        })
      : undefined;
  }

  static open(opts: AuditLogOptions): AuditLog {
    const log = new AuditLog(opts);
    if (opts.file) {
      fs.mkdirSync(path.dirname(opts.file), { recursive: true });
      const torn = repairTornTail(opts.file);
      // Resume the chain from the last valid entry: in the current file, or in the newest rotated
      // file when the current one is missing or empty (a crash just after a rotation).
      const last = [opts.file, ...rotatedSiblings(opts.file).reverse()].reduce<AuditEntry | undefined>((found, f) => found ?? lastValidEntry(f), undefined);
      if (last) {
        log.seq = last.seq;
        log.prevHash = last.hash;
      }
      log.openCurrent();
      if (torn) log.write({ type: 'audit.recovered', file: opts.file, ...torn });
    }
    return log;
  }

  /** Appends one event; when this returns, the line is in the file (and on its way to stdout). */
  write(event: AuditEvent): AuditEntry {
    if (this.closed) throw new Error('audit log is closed');
    const body = normalizeEvent(event);
    const unhashed = { seq: this.seq + 1, time: new Date().toISOString(), ...body, prevHash: this.prevHash };
    const entry = { ...unhashed, hash: entryHash(unhashed) } as unknown as AuditEntry;
    const line = JSON.stringify(entry);
    if (this.fd !== undefined) {
      const bytes = Buffer.from(`${line}\n`, 'utf8');
      if (this.size > 0 && this.size + bytes.length > this.maxBytes) this.rotate();
      this.append(bytes);
      this.scheduleSync();
    }
    // Only now does the chain advance: a failed write leaves it where the file is.
    this.seq = entry.seq;
    this.prevHash = entry.hash;
    this.logger?.info(line);
    return entry;
  }

  /** fdatasync now: for a caller that must know an entry survives a power loss. */
  sync(): void {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    if (this.fd !== undefined) fs.fdatasyncSync(this.fd);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sync();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    const logger = this.logger;
    if (logger) await new Promise<void>((resolve) => { logger.on('finish', () => resolve()); logger.end(); });
  }

  /** Entries (oldest first) of the current file and its rotated siblings that satisfy `predicate`. */
  async find(predicate: (e: AuditEntry) => boolean, opts: { limit?: number } = {}): Promise<AuditEntry[]> {
    return this.withSnapshot((snap) => findIn(snap, predicate, opts.limit));
  }

  /** The history of the instances matching `q` (see AuditQuery), oldest first. */
  async search(q: AuditQuery, opts: { limit?: number } = {}): Promise<AuditEntry[]> {
    return this.withSnapshot((snap) => searchIn(snap, q, opts.limit));
  }

  private async withSnapshot<T>(read: (snap: Snapshot) => Promise<T>): Promise<T> {
    const file = this.opts.file;
    if (!file) throw new Error('the audit log has no file to search (audit.file is not set)');
    // The current file is read only up to the last complete line this writer appended.
    const current = this.fd !== undefined ? [{ path: file, size: this.size }] : fs.existsSync(file) ? [{ path: file }] : [];
    const snap = takeSnapshot([...rotatedSiblings(file).map((p) => ({ path: p })), ...current]);
    try {
      return await read(snap);
    } finally {
      releaseSnapshot(snap);
    }
  }

  private openCurrent(): void {
    const file = this.opts.file!;
    const existed = fs.existsSync(file);
    this.fd = fs.openSync(file, 'a', 0o640);
    this.size = fs.fstatSync(this.fd).size;
    if (!existed) syncDir(path.dirname(file));
  }

  private append(bytes: Buffer): void {
    try {
      for (let off = 0; off < bytes.length; ) off += fs.writeSync(this.fd!, bytes, off);
      this.size += bytes.length;
    } catch (err) {
      // Disk full, I/O error: take a partial line back out, so later entries do not follow garbage.
      try { fs.ftruncateSync(this.fd!, this.size); } catch { /* the torn tail is repaired at the next start */ }
      throw err;
    }
  }

  /** audit.jsonl -> .1, .1 -> .2, ...; oldest first, so a crash halfway leaves a gap, never a swap. */
  private rotate(): void {
    const file = this.opts.file!;
    fs.fdatasyncSync(this.fd!);
    fs.closeSync(this.fd!);
    this.fd = undefined;
    try {
      for (const p of rotatedSiblings(file)) {
        fs.renameSync(p, `${file}.${Number(path.extname(p).slice(1)) + 1}`);
      }
      fs.renameSync(file, `${file}.1`);
    } finally {
      // Even when a rename failed: keep appending to whatever is current (the chain is intact).
      this.openCurrent();
    }
    syncDir(path.dirname(file));
  }

  private scheduleSync(): void {
    if (this.syncIntervalMs === 0) return this.sync();
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      if (this.fd !== undefined) fs.fdatasyncSync(this.fd);
    }, this.syncIntervalMs);
    this.syncTimer.unref();
  }
}

/**
 * Ends the file on a line boundary. What follows the last newline is either a complete line
 * whose newline never made it (kept: the newline is added) or a torn write (cut off, and
 * returned so that the log records its size and hash). Complete lines are never touched: a
 * broken one is evidence, for `verify` to report.
 */
function repairTornTail(file: string): { discardedBytes: number; discardedSha256: string } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r+');
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const { text: tail, start } = linesBackward(fd, size).next().value!;
    if (tail.length === 0) return undefined;
    if (isJson(tail)) {
      // A torn write is a strict prefix of a JSON object, which is never valid JSON: this is a
      // whole line (an entry, or something for verify to report) that only lacks its newline.
      fs.writeSync(fd, '\n', size);
      return undefined;
    }
    const discarded = { discardedBytes: tail.length, discardedSha256: createHash('sha256').update(tail).digest('hex') };
    fs.ftruncateSync(fd, start);
    fs.fsyncSync(fd);
    return discarded;
  } finally {
    fs.closeSync(fd);
  }
}

function isJson(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

/** Makes a create or rename durable (the directory entry, not just the data). */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Not supported everywhere (Windows); the data itself is synced.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
