import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { CommitResult, SpoolError, SpoolWriter } from './types';

const fsyncAsync = promisify(fs.fsync);
const closeAsync = promisify(fs.close);

/** Small writes are gathered up to this size before one write(2); bigger ones go straight out. */
const STAGING = 256 << 10;

/**
 * Streams one instance into `tmp/<id>.part`. Memory stays at one staging buffer whatever the
 * instance size. Writes are synchronous (page cache, bounded size) so a caller feeding PDVs from
 * a socket needs no back-pressure plumbing; the slow part (fsync) happens in commit(), async.
 *
 * A write error (ENOSPC, EIO) is kept and thrown from commit(), not from write(): write() is
 * called from network event handlers, where a throw would tear down the association instead of
 * letting the DIMSE layer answer a failure status.
 */
export class TempFileWriter implements SpoolWriter {
  private fd: number | null;
  private staging = Buffer.allocUnsafe(STAGING);
  private staged = 0;
  private error: Error | null = null;
  private closed = false;
  private written = 0;

  constructor(
    readonly id: string,
    readonly partFile: string,
    private readonly fsync: boolean,
    /** Validates and publishes the fsync'd, closed temp file; owns it from then on. */
    private readonly publish: (w: TempFileWriter) => Promise<CommitResult>,
    prefix?: Buffer,
    /** Undoes what the spool prepared for this entry (its early sidecar) when it is not committed. */
    private readonly discard: () => Promise<void> = async () => undefined,
  ) {
    this.fd = fs.openSync(partFile, 'wx', 0o644);
    if (prefix?.length) this.write(prefix);
  }

  get bytes(): number {
    return this.written;
  }

  write(chunk: Buffer): void {
    if (this.closed) throw new SpoolError('WRITER_CLOSED', `spool writer ${this.id} is already committed or aborted`);
    this.written += chunk.length;
    if (this.error) return;
    try {
      if (this.staged + chunk.length > STAGING) this.flush();
      if (chunk.length >= STAGING) writeAll(this.fd!, chunk);
      else this.staged += chunk.copy(this.staging, this.staged);
    } catch (err) {
      this.error = err as Error;
    }
  }

  async commit(): Promise<CommitResult> {
    if (this.closed) throw new SpoolError('WRITER_CLOSED', `spool writer ${this.id} is already committed or aborted`);
    this.closed = true;
    const fd = this.fd!;
    try {
      if (!this.error) this.flush();
      this.fd = null;
      if (this.error) throw this.error;
      if (this.fsync) await fsyncAsync(fd);
    } catch (err) {
      await closeAsync(fd).catch(() => undefined);
      fs.rmSync(this.partFile, { force: true });
      await this.discard();
      throw err;
    }
    await closeAsync(fd);
    return this.publish(this);
  }

  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const fd = this.fd!;
    this.fd = null;
    await closeAsync(fd).catch(() => undefined);
    fs.rmSync(this.partFile, { force: true });
    await this.discard();
  }

  private flush(): void {
    if (!this.staged) return;
    try {
      writeAll(this.fd!, this.staging.subarray(0, this.staged));
    } finally {
      this.staged = 0;
    }
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}
