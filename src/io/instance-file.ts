import * as fs from 'node:fs';
import { BufferSource, ByteSource, FileSource } from '../dicom/byte-source';
import { DicomParseError } from '../dicom/errors';
import { Instance, readInstance } from '../dicom/part10';
import { Part, partLength } from '../dicom/writer';

/** Files above this size are parsed through a window and their Pixel Data is never loaded. */
export const STREAM_THRESHOLD = 64 << 20;

export interface OpenedInstance {
  instance: Instance;
  size: number;
  close(): void;
}

/**
 * One read buffer reused from file to file by a single thread (a folder worker): no fresh
 * half-megabyte allocation per file (page faults, external-memory GC pressure). An instance
 * opened with it is valid only until the next openInstance with the same ReadBuffer, so it
 * suits a loop that finishes each file (output written) before it opens the next.
 */
export class ReadBuffer {
  /** Larger files get a buffer of their own: a worker never holds more than this between files. */
  static readonly KEEP_MAX = 16 << 20;
  private buf = Buffer.allocUnsafe(0);

  /** A buffer of exactly `size` bytes, valid until the next call. */
  take(size: number): Buffer {
    if (size > ReadBuffer.KEEP_MAX) return Buffer.allocUnsafe(size);
    if (size > this.buf.length) this.buf = Buffer.allocUnsafe(Math.min(ReadBuffer.KEEP_MAX, Math.max(size, 2 * this.buf.length, 1 << 20)));
    return this.buf.subarray(0, size);
  }
}

/**
 * Opens and parses a DICOM file; the caller must close() it once the output is written.
 * With `reuse`, a file read whole lands in that buffer (see ReadBuffer for the lifetime).
 */
export function openInstance(file: string, reuse?: ReadBuffer): OpenedInstance {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let src: ByteSource;
    if (size > STREAM_THRESHOLD) {
      src = new FileSource(fd);
    } else {
      const buf = reuse ? reuse.take(size) : Buffer.allocUnsafe(size);
      let done = 0;
      while (done < size) done += fs.readSync(fd, buf, done, size - done, done) || fail(file);
      src = new BufferSource(buf);
    }
    const instance = readInstance(src);
    if (src instanceof FileSource) return { instance, size, close: () => fs.closeSync(fd) };
    fs.closeSync(fd);
    return { instance, size, close: () => undefined };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * Parses a file's structure without reading its values: the check the spool makes before it
 * acknowledges an instance. Only headers are read (a 64 KB head, then small windows), so Pixel
 * Data is never loaded. Throws DicomParseError like openInstance.
 */
export function validateInstanceFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    readInstance(new FileSource(fd, 64 << 10));
  } finally {
    fs.closeSync(fd);
  }
}

function fail(file: string): never {
  throw new DicomParseError('TRUNCATED', `${file} shrank while being read`);
}

const COPY_CHUNK = 8 << 20;

/** The size of the output writeOutputFile would write. */
export const outputSize = (meta: Buffer, parts: Part[]): number => parts.reduce((n, p) => n + partLength(p), meta.length);

/**
 * meta + parts as one buffer of its own (not a slice of Node's shared pool), so that it can be
 * transferred to another thread without a copy. For outputs small enough to hold in memory.
 */
export function outputBytes(meta: Buffer, parts: Part[]): Buffer {
  const out = Buffer.allocUnsafeSlow(outputSize(meta, parts));
  let at = meta.copy(out, 0);
  for (const p of parts) {
    if (Buffer.isBuffer(p)) at += p.copy(out, at);
    else at += p.src.slice(p.start, p.end).copy(out, at);
  }
  return out;
}

/**
 * Writes meta + parts to `target` atomically (temp file + rename), copying untouched input
 * ranges in bounded chunks. Returns the number of bytes written.
 */
export function writeOutputFile(target: string, meta: Buffer, parts: Part[], options: { fsync?: boolean } = {}): number {
  const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  let written = 0;
  try {
    const pending: Buffer[] = [meta];
    const flush = (): void => {
      if (!pending.length) return;
      const batch = pending.splice(0);
      const total = batch.reduce((n, b) => n + b.length, 0);
      const n = fs.writevSync(fd, batch);
      // writev may write less than asked; finish the rest plainly.
      if (n < total) writeAll(fd, Buffer.concat(batch).subarray(n));
      written += total;
    };
    for (const p of parts) {
      if (Buffer.isBuffer(p)) pending.push(p);
      else if (p.end - p.start <= COPY_CHUNK) pending.push(p.src.slice(p.start, p.end));
      else {
        flush();
        written += copyRange(p.src, p.start, p.end, fd);
      }
      if (pending.length >= 64) flush();
    }
    flush();
    if (options.fsync) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, target);
    return written;
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

let copyBuffer: Buffer | undefined;

/** Streams a large input range (Pixel Data) to the output through one reused buffer. */
function copyRange(src: ByteSource, start: number, end: number, fd: number): number {
  let written = 0;
  for (let pos = start; pos < end; pos += COPY_CHUNK) {
    const len = Math.min(COPY_CHUNK, end - pos);
    let chunk: Buffer;
    if (src instanceof FileSource) {
      copyBuffer ??= Buffer.allocUnsafe(COPY_CHUNK);
      let got = 0;
      while (got < len) got += fs.readSync(src.fd, copyBuffer, got, len - got, pos + got) || fail('input');
      chunk = copyBuffer.subarray(0, len);
    } else chunk = src.slice(pos, pos + len);
    written += writeAll(fd, chunk);
  }
  return written;
}

function writeAll(fd: number, buf: Buffer): number {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
  return off;
}
