import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { BufferSource, ByteSource, FileSource } from '../dicom/byte-source';
import { Instance, readInstance } from '../dicom/part10';
import { T } from '../dicom/tags';
import { openInstance } from '../io/instance-file';

const CHUNK = 8 << 20;

let chunkBuffer: Buffer | undefined;

/**
 * SHA-256 of a byte range, read in bounded chunks (Pixel Data may be gigabytes). From a file,
 * through one reused buffer: a fresh 8 MB buffer per chunk is freed only at the next GC, and
 * a 2 GB study made the gateway's RSS climb by the tens of MB that way (bench:export).
 */
export function hashRange(src: ByteSource, start: number, end: number): string {
  const h = createHash('sha256');
  for (let pos = start; pos < end; pos += CHUNK) {
    const len = Math.min(CHUNK, end - pos);
    if (src instanceof FileSource) {
      chunkBuffer ??= Buffer.allocUnsafe(CHUNK);
      let got = 0;
      while (got < len) {
        const n = fs.readSync(src.fd, chunkBuffer, got, len - got, pos + got);
        if (n === 0) throw new Error('file shrank while its Pixel Data was hashed');
        got += n;
      }
      h.update(chunkBuffer.subarray(0, len));
    } else {
      h.update(src.slice(pos, pos + len));
    }
  }
  return h.digest('hex');
}

/** Where an input's Pixel Data value is, and its SHA-256 (hashRange). */
export interface HashedRange {
  src: ByteSource;
  start: number;
  end: number;
  sha256: string;
}

/**
 * SHA-256 of the Pixel Data value of a file on disk, found by parsing the file again
 * (independently of the writer that made it; the output's own bytes, not the engine's record).
 *
 * With `input`, the value is first compared byte for byte with the input's range, whose hash is
 * known: equal bytes have that SHA-256, so the second hash pass is a memcmp (measured: the two
 * SHA-256 passes were 8% of the gateway's CPU). A value that differs in length or in any byte
 * (never expected) is hashed for real, so the mismatch shows in the result.
 */
export function pixelHashOfFile(file: string, input?: HashedRange | null): string | null {
  const opened = openInstance(file);
  try {
    return pixelHashOf(opened.instance, input);
  } finally {
    opened.close();
  }
}

/** pixelHashOfFile of Part 10 bytes in memory (an output handed over without a file). */
export const pixelHashOfBytes = (bytes: Buffer, input?: HashedRange | null): string | null => pixelHashOf(readInstance(new BufferSource(bytes)), input);

function pixelHashOf(instance: Instance, input?: HashedRange | null): string | null {
  const ds = instance.dataset;
  const pixel = ds.elements.find((e) => e.tag === T.PixelData || e.tag === T.FloatPixelData || e.tag === T.DoubleFloatPixelData);
  if (!pixel) return null;
  if (input && sameBytes(ds.src, pixel.valueStart, pixel.end, input)) return input.sha256;
  return hashRange(ds.src, pixel.valueStart, pixel.end);
}

const COMPARE_CHUNK = 1 << 20;
let compareBuffers: [Buffer, Buffer] | undefined;

function sameBytes(src: ByteSource, start: number, end: number, input: HashedRange): boolean {
  if (end - start !== input.end - input.start) return false;
  compareBuffers ??= [Buffer.allocUnsafe(COMPARE_CHUNK), Buffer.allocUnsafe(COMPARE_CHUNK)];
  for (let pos = 0; pos < end - start; pos += COMPARE_CHUNK) {
    const len = Math.min(COMPARE_CHUNK, end - start - pos);
    const a = bytesAt(src, start + pos, len, compareBuffers[0]);
    const b = bytesAt(input.src, input.start + pos, len, compareBuffers[1]);
    if (!a.equals(b)) return false;
  }
  return true;
}

/** A view of data in memory; a large file's bytes read into `into` (no buffer per chunk). */
function bytesAt(src: ByteSource, pos: number, len: number, into: Buffer): Buffer {
  if (!(src instanceof FileSource)) return src.slice(pos, pos + len);
  let got = 0;
  while (got < len) {
    const n = fs.readSync(src.fd, into, got, len - got, pos + got);
    if (n === 0) throw new Error('file shrank while its Pixel Data was compared');
    got += n;
  }
  return into.subarray(0, len);
}
