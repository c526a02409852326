import * as fs from 'node:fs';

/**
 * Random access to the bytes of one encoded dataset. The parser only ever asks for small
 * headers, so a multi-gigabyte file is parsed with a bounded window while Pixel Data is
 * never read into memory; the writer later copies untouched ranges straight from the file.
 */
export interface ByteSource {
  readonly size: number;
  /** A buffer and an offset such that buffer[offset, offset + length) are the bytes at pos. */
  view(pos: number, length: number): [Buffer, number];
  /** The bytes [start, end) as one buffer (copies when they are not in memory). */
  slice(start: number, end: number): Buffer;
}

export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(readonly buffer: Buffer) {
    this.size = buffer.length;
  }
  view(pos: number, length: number): [Buffer, number] {
    if (pos < 0 || pos + length > this.size) throw new RangeError(`read past end: ${pos}+${length} > ${this.size}`);
    return [this.buffer, pos];
  }
  slice(start: number, end: number): Buffer {
    return this.buffer.subarray(start, end);
  }
}

const WINDOW = 1 << 20;

/** A file read through a head buffer and one moving window; the caller closes it. */
export class FileSource implements ByteSource {
  readonly size: number;
  private readonly head: Buffer;
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;

  constructor(readonly fd: number, headBytes = 4 * WINDOW) {
    this.size = fs.fstatSync(fd).size;
    this.head = this.readAt(0, Math.min(this.size, headBytes));
  }

  view(pos: number, length: number): [Buffer, number] {
    if (pos < 0 || pos + length > this.size) throw new RangeError(`read past end: ${pos}+${length} > ${this.size}`);
    if (pos + length <= this.head.length) return [this.head, pos];
    if (pos >= this.windowStart && pos + length <= this.windowStart + this.window.length) {
      return [this.window, pos - this.windowStart];
    }
    this.windowStart = pos;
    this.window = this.readAt(pos, Math.min(this.size - pos, Math.max(length, WINDOW)));
    return [this.window, 0];
  }

  slice(start: number, end: number): Buffer {
    if (end <= this.head.length) return this.head.subarray(start, end);
    return this.readAt(start, end - start);
  }

  private readAt(pos: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, pos + done);
      if (n === 0) throw new RangeError(`file shrank while reading at ${pos + done}`);
      done += n;
    }
    return buf;
  }
}
