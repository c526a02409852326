export type Dtype = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

/**
 * A decoded pixel array. `shape` is always [frames, rows, cols] plus a trailing samples
 * dimension only when SamplesPerPixel > 1 (always interleaved, whatever the file's
 * PlanarConfiguration). `data` is little-endian, C order, exactly product(shape) elements.
 */
export interface PixelArray {
  dtype: Dtype;
  shape: number[];
  data: Buffer;
}

export interface PixelInfo {
  rows: number;
  columns: number;
  frames: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  photometric: string;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  pixelSpacing?: [number, number];
  sliceThickness?: number;
  instanceNumber?: number;
  transferSyntaxUid: string;
}

export const DTYPE_BYTES: Record<Dtype, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  float64: 8,
};

export type TypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array;

/**
 * A typed-array view over `buf` (no copy). The host must be little-endian, which holds for
 * every platform Node 20 ships on; the check at the end of this file guards it at load time.
 * `buf` must be aligned to the element size: buffers made by this module always are.
 */
export function typedView(dtype: Dtype, buf: Buffer): TypedArray {
  const n = buf.byteLength / DTYPE_BYTES[dtype];
  const ab = buf.buffer;
  const o = buf.byteOffset;
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(ab, o, n);
    case 'int8':
      return new Int8Array(ab, o, n);
    case 'uint16':
      return new Uint16Array(ab, o, n);
    case 'int16':
      return new Int16Array(ab, o, n);
    case 'uint32':
      return new Uint32Array(ab, o, n);
    case 'int32':
      return new Int32Array(ab, o, n);
    case 'float32':
      return new Float32Array(ab, o, n);
    case 'float64':
      return new Float64Array(ab, o, n);
  }
}

/**
 * `buf` itself when its offset suits `dtype`, else an aligned copy. Caller-supplied buffers
 * may be slices of Node's shared pool at odd offsets, which typed arrays reject.
 * (Buffer.alloc never uses the pool, so buffers made by this module are always aligned.)
 */
export function alignedFor(dtype: Dtype, buf: Buffer): Buffer {
  if (buf.byteOffset % DTYPE_BYTES[dtype] === 0) return buf;
  const copy = Buffer.alloc(buf.length);
  buf.copy(copy);
  return copy;
}

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Typed-array views would produce big-endian output; refuse rather than write wrong files.
  throw new Error('src/pixels requires a little-endian host');
}
