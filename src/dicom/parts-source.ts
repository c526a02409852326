import { ByteSource } from './byte-source';
import { Part, partLength } from './writer';

/**
 * Reads an output that exists only as parts (buffers plus input ranges) as if it were one
 * file, so the leak guard can re-parse exactly the bytes that will be written, without
 * concatenating gigabytes of Pixel Data.
 */
export class PartsSource implements ByteSource {
  readonly size: number;
  private readonly offsets: number[] = [];

  constructor(private readonly parts: Part[]) {
    let pos = 0;
    for (const p of parts) {
      this.offsets.push(pos);
      pos += partLength(p);
    }
    this.size = pos;
  }

  view(pos: number, length: number): [Buffer, number] {
    const i = this.partIndex(pos);
    const p = this.parts[i];
    const off = pos - this.offsets[i];
    if (off + length <= partLength(p)) {
      if (Buffer.isBuffer(p)) return [p, off];
      const [b, o] = p.src.view(p.start + off, length);
      return [b, o];
    }
    return [this.slice(pos, pos + length), 0];
  }

  slice(start: number, end: number): Buffer {
    if (start < 0 || end > this.size) throw new RangeError(`read past end: ${start}-${end} > ${this.size}`);
    const chunks: Buffer[] = [];
    let pos = start;
    while (pos < end) {
      const i = this.partIndex(pos);
      const p = this.parts[i];
      const off = pos - this.offsets[i];
      const take = Math.min(end - pos, partLength(p) - off);
      chunks.push(Buffer.isBuffer(p) ? p.subarray(off, off + take) : p.src.slice(p.start + off, p.start + off + take));
      pos += take;
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  }

  private partIndex(pos: number): number {
    let lo = 0;
    let hi = this.offsets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offsets[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
