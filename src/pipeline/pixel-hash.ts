import { createHash } from 'node:crypto';
import { ByteSource } from '../dicom/byte-source';
import { T } from '../dicom/tags';
import { openInstance } from '../io/instance-file';

const CHUNK = 8 << 20;

/** SHA-256 of a byte range, read in bounded chunks (Pixel Data may be gigabytes). */
export function hashRange(src: ByteSource, start: number, end: number): string {
  const h = createHash('sha256');
  for (let pos = start; pos < end; pos += CHUNK) h.update(src.slice(pos, Math.min(end, pos + CHUNK)));
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
