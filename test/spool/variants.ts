import { makeImage } from '../support/dicom-builder';

/** The inputs of the crash test, rebuilt identically by the child and the checking parent. */
export function crashVariants(): { good: Buffer[]; truncated: Buffer } {
  const good = [8, 64, 200].map((rows) => makeImage({ rows, cols: rows }));
  return { good, truncated: good[1].subarray(0, good[1].length - 100) };
}
