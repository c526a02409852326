/**
 * NumPy .npy writer, format version 1.0
 * (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 * magic "\x93NUMPY", version 1.0, uint16 LE header length, then a Python dict literal padded
 * with spaces and ended by "\n" so that the array data starts on a 64-byte boundary.
 */
import { PixelDecodeError } from './errors';
import type { Dtype, PixelArray } from './types';
import { DTYPE_BYTES, elementCount } from './types';

const DESCR: Record<Dtype, string> = {
  // numpy writes '|' (not applicable) for one-byte types; np.load accepts either.
  uint8: '|u1',
  int8: '|i1',
  uint16: '<u2',
  int16: '<i2',
  uint32: '<u4',
  int32: '<i4',
  float32: '<f4',
  float64: '<f8',
};

export function encodeNpy(a: PixelArray): Buffer {
  const descr = DESCR[a.dtype];
  if (!descr) throw new PixelDecodeError('UNSUPPORTED_DTYPE', `no .npy descr for dtype ${String(a.dtype)}`);
  if (!a.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new PixelDecodeError('INVALID_ARGUMENT', `invalid shape [${a.shape.join(', ')}]`);
  }
  const bytes = elementCount(a.shape) * DTYPE_BYTES[a.dtype];
  if (a.data.length !== bytes) {
    throw new PixelDecodeError('INVALID_ARGUMENT', `data has ${a.data.length} bytes, shape needs ${bytes}`);
  }
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const preamble = 10; // magic(6) + version(2) + header length(2)
  const total = Math.ceil((preamble + header.length + 1) / 64) * 64;
  header = header.padEnd(total - preamble - 1, ' ') + '\n';
  if (header.length > 0xffff) throw new PixelDecodeError('INVALID_ARGUMENT', 'shape too long for .npy v1.0');

  const head = Buffer.alloc(preamble);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), a.data]);
}
