/**
 * Modality LUT as a linear rescale: out = stored * slope + intercept, as float32.
 * Computed in float64 and rounded once to float32. float32 holds every integer up to 2^24
 * exactly, so 8/16-bit data with integral slope/intercept (CT: 1, -1024) is exact; 32-bit
 * integer and float64 inputs can lose precision, which is why decodePixels never rescales on
 * its own and the raw array stays the lossless artefact.
 */
import { PixelDecodeError } from './errors';
import type { PixelArray } from './types';
import { alignedFor, elementCount, typedView } from './types';

export function applyRescale(a: PixelArray, slope: number, intercept: number): PixelArray {
  if (!Number.isFinite(slope) || !Number.isFinite(intercept)) {
    throw new PixelDecodeError('INVALID_ARGUMENT', `rescale slope ${slope} / intercept ${intercept} must be finite`);
  }
  const n = elementCount(a.shape);
  const src = typedView(a.dtype, alignedFor(a.dtype, a.data));
  if (src.length !== n) throw new PixelDecodeError('INVALID_ARGUMENT', 'array data does not match its shape');
  const data = Buffer.alloc(n * 4);
  const dst = new Float32Array(data.buffer, data.byteOffset, n);
  for (let i = 0; i < n; i++) dst[i] = src[i] * slope + intercept;
  return { dtype: 'float32', shape: [...a.shape], data };
}
