import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { ByteSource, FileSource } from '../dicom/byte-source';
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

/** SHA-256 of the Pixel Data value of a file on disk, found by parsing it again. */
export function pixelHashOfFile(file: string): string | null {
  const opened = openInstance(file);
  try {
    const ds = opened.instance.dataset;
    const pixel = ds.elements.find((e) => e.tag === T.PixelData || e.tag === T.FloatPixelData || e.tag === T.DoubleFloatPixelData);
    return pixel ? hashRange(ds.src, pixel.valueStart, pixel.end) : null;
  } finally {
    opened.close();
  }
}
