import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { CommitResult, SpoolError, SpoolWriter } from './types';

const fsyncAsync = promisify(fs.fsync);
const closeAsync = promisify(fs.close);

/** Small writes are gathered up to this size before one write(2). */
const STAGING = 256 << 10;
/**
 * First size of the staging buffer, which doubles up to STAGING as small chunks come. Most
 * instances stage only their File Meta and one short last PDV: a full STAGING buffer for each,
 * twice (at open and after the first direct chunk), was half a megabyte of external memory per
 * instance on the receiving thread, and with it a quarter of its young-generation collections.
 */
const STAGING_FIRST = 16 << 10;
/** Chunks at least this big are written as they are (no copy into the staging buffer). */
const DIRECT = 64 << 10;
/**
 * Bytes allowed to wait for the thread pool; past this (a disk slower than the network) writes
 * become synchronous, which bounds memory and slows the sender down through TCP instead.
 */
const MAX_PENDING = 4 << 20;

/**
 * Streams one instance into `tmp/<id>.part`. Memory stays at one staging buffer plus the chunks
 * not yet on disk whatever the instance size. The writes run on libuv's thread pool, so the main
 * thread (which also answers C-STOREs) never waits for a copy into the page cache; the caller
 * needs no back-pressure plumbing because commit() waits for them all, then fsyncs.
 *
 * Each write is issued as soon as its bytes are staged, at its own file offset (pwrite), not
 * chained behind the previous one: a chain needs the main thread between two writes, and on a
 * busy main thread the last writes of an instance then finished milliseconds after its last PDV
 * (measured: 3.4 ms median of 12 ms per instance, on the sender's wait). Writes at distinct
 * offsets may finish in any order; the file is the same.
 *
 * A chunk handed to write() must not be changed afterwards: it may be written later. (Socket
 * reads, PDVs and multipart parts are fresh buffers; the staging buffer is never reused while
 * a write of it is pending.)
 *
 * A write error (ENOSPC, EIO) is kept and thrown from commit(), not from write(): write() is
 * called from network event handlers, where a throw would tear down the association instead of
 * letting the DIMSE layer answer a failure status.
 */
export class TempFileWriter implements SpoolWriter {
  /** Set once the open on the thread pool has succeeded. */
  private fd: number | null = null;
  /** The open has finished (fd set, or error set). */
  private opened = false;
  /** Chunks staged before the open finished, with their file offsets: issued when it does. */
  private waiting: [Buffer, number][] = [];
  /** Small chunks copied here until a write of their own (allocated when needed, see room()). */
  private staging: Buffer | null = null;
  private staged = 0;
  private error: Error | null = null;
  private closed = false;
  private written = 0;
  /** File offset of the next chunk. */
  private position = 0;
  /** Writes issued to the thread pool and not finished yet. */
  private inFlight = 0;
  /** Bytes handed to enqueue() and not on disk yet. */
  private pending = 0;
  /** Waiters for "the open and every issued write have finished". */
  private onDrained: (() => void)[] = [];

  constructor(
    readonly id: string,
    readonly partFile: string,
    private readonly fsync: boolean,
    /** Validates and publishes the fsync'd, closed temp file; owns it from then on. */
    private readonly publish: (w: TempFileWriter) => Promise<CommitResult>,
    prefix?: Buffer,
    /** Undoes what the spool prepared for this entry (its early sidecar) when it is not committed. */
    private readonly discard: () => Promise<void> = async () => undefined,
    /**
     * Checks the complete file (synchronously) while its fsync runs on the thread pool, so the
     * check adds nothing to the sender's wait; what it threw (or null) is in `checked`.
     */
    private readonly check?: (file: string) => void,
  ) {
    // Opened on the thread pool: creating a file costs 0.1-0.6 ms here while data is being
    // written, time the main thread would add to every C-STORE. Chunks wait for the open.
    // (fs.open is looked up at call time: the crash test replaces it.)
    fs.open(partFile, 'wx', 0o644, (err, fd) => {
      this.opened = true;
      if (err) this.error ??= err;
      else this.fd = fd;
      for (const [buf, at] of this.waiting.splice(0)) this.issue(buf, at);
      this.settle();
    });
    if (prefix?.length) this.write(prefix);
  }

  get bytes(): number {
    return this.written;
  }

  /** What `check` threw (null: it passed; undefined: it did not run). Set by commit(). */
  checked: unknown = undefined;

  write(chunk: Buffer): void {
    if (this.closed) throw new SpoolError('WRITER_CLOSED', `spool writer ${this.id} is already committed or aborted`);
    this.written += chunk.length;
    if (this.error) return;
    if (chunk.length >= DIRECT) {
      this.flush();
      this.enqueue(chunk);
      return;
    }
    if (this.staged + chunk.length > STAGING) this.flush();
    this.staged += chunk.copy(this.room(chunk.length), this.staged);
  }

  /** The staging buffer with room for `n` more bytes (staged + n <= STAGING). */
  private room(n: number): Buffer {
    const need = this.staged + n;
    if (this.staging && this.staging.length >= need) return this.staging;
    let size = this.staging?.length ?? STAGING_FIRST;
    while (size < need) size *= 2;
    const grown = Buffer.allocUnsafe(Math.min(size, STAGING));
    this.staging?.copy(grown, 0, 0, this.staged);
    this.staging = grown;
    return grown;
  }

  async commit(): Promise<CommitResult> {
    if (this.closed) throw new SpoolError('WRITER_CLOSED', `spool writer ${this.id} is already committed or aborted`);
    this.closed = true;
    let fd: number | null = null;
    try {
      this.flush();
      await this.drained();
      fd = this.fd;
      this.fd = null;
      if (this.error) throw this.error;
      const synced = this.fsync ? fsyncAsync(fd!) : undefined;
      if (this.check) {
        try {
          this.check(this.partFile);
          this.checked = null;
        } catch (err) {
          this.checked = err;
        }
      }
      await synced;
      // Closing needs no disk: a syscall here is cheaper than a trip through the thread pool.
      fs.closeSync(fd!);
    } catch (err) {
      if (fd !== null) await closeAsync(fd).catch(() => undefined);
      if (!this.openFailed()) fs.rmSync(this.partFile, { force: true });
      await this.discard();
      throw err;
    }
    return this.publish(this);
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Never close under a pending write: its fd number could be reused by then.
    await this.drained();
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) await closeAsync(fd).catch(() => undefined);
    if (!this.openFailed()) fs.rmSync(this.partFile, { force: true });
    await this.discard();
  }

  /** The open itself failed: the file at partFile (if any) is not ours to delete. */
  private openFailed(): boolean {
    return this.fd === null && (this.error as NodeJS.ErrnoException | null)?.syscall === 'open';
  }

  /** Hands the staged bytes to a write of their own; the next ones go to a new staging buffer. */
  private flush(): void {
    if (!this.staged) return;
    const full = this.staging!.subarray(0, this.staged);
    this.staging = null;
    this.staged = 0;
    this.enqueue(full);
  }

  private enqueue(buf: Buffer): void {
    const at = this.position;
    this.position += buf.length;
    if (this.fd !== null && this.pending + buf.length > MAX_PENDING) {
      // The disk is behind: write here, which slows the sender down through TCP.
      try {
        writeAllSync(this.fd, buf, at);
      } catch (err) {
        this.error ??= err as Error;
      }
      return;
    }
    this.pending += buf.length;
    if (this.opened) this.issue(buf, at);
    else this.waiting.push([buf, at]);
  }

  /** One positional write on the thread pool (the rest again if it was short). */
  private issue(buf: Buffer, at: number): void {
    if (this.error || this.fd === null) {
      this.pending -= buf.length;
      return;
    }
    this.inFlight++;
    fs.write(this.fd, buf, 0, buf.length, at, (err, n) => {
      this.inFlight--;
      if (err) {
        this.error ??= err;
        this.pending -= buf.length;
      } else if (n < buf.length) {
        this.pending -= n;
        this.issue(buf.subarray(n), at + n);
      } else this.pending -= n;
      this.settle();
    });
  }

  /** Resolves once the open and every write issued so far have finished. */
  private drained(): Promise<void> {
    if (this.opened && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.onDrained.push(resolve));
  }

  private settle(): void {
    if (this.opened && this.inFlight === 0) for (const resolve of this.onDrained.splice(0)) resolve();
  }
}

function writeAllSync(fd: number, buf: Buffer, position: number): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off, position + off);
}
