/**
 * decodePixels: Part 10 bytes -> PixelInfo + full-depth pixel array.
 *
 * Reference behaviour is pydicom 2.3's `Dataset.pixel_array` (the tests compare byte for byte):
 *  - dtype from BitsAllocated/PixelRepresentation (uint8/int8, uint16/int16, uint32/int32),
 *    BitsAllocated 1 -> uint8 0/1, Float / Double Float Pixel Data -> float32 / float64;
 *  - no rescale, no windowing, no MONOCHROME1 inversion, no palette lookup;
 *  - colour: YBR_FULL and YBR_FULL_422 from JPEG are returned as decoded YCbCr, NOT converted
 *    to RGB, as pydicom 2.3 does (Pillow handler calls im.draft('YCbCr')); info.photometric
 *    keeps the file's value so the caller knows the colour space. YBR_ICT / YBR_RCT J2K come
 *    back as RGB because the J2K decoder undoes the component transform (pydicom+Pillow too);
 *  - signed data is sign-extended from BitsStored (see layout.ts: pydicom 2.3 differs there).
 */
import type * as dicomParser from 'dicom-parser';
import { decodeCodecFrame, distrustCodecs, isCodecSyntax, prepareCodecs } from './codecs';
import { readPixelDataSet, TS, type ParsedPixels } from './dataset';
import { PixelDecodeError } from './errors';
import { splitFrames } from './frames';
import { planarToInterleaved, signExtendInPlace } from './layout';
import { decodeNative, type NativeLayout } from './native';
import { decodeRleFrame } from './rle';
import type { Dtype, PixelArray, PixelInfo } from './types';
import { DTYPE_BYTES } from './types';

/**
 * Upper bound for one decoded array. Well above any real instance (a 2000-frame 512x512
 * 16-bit cine is 1 GiB) and it stops a corrupt Rows/NumberOfFrames from allocating gigabytes.
 */
export const MAX_ARRAY_BYTES = 2 * 1024 ** 3;

const NATIVE_SYNTAXES = new Set<string>([TS.implicitLE, TS.explicitLE, TS.deflatedLE, TS.explicitBE]);

export async function decodePixels(part10: Buffer): Promise<{ info: PixelInfo; array: PixelArray }> {
  if (!Buffer.isBuffer(part10)) throw new PixelDecodeError('INVALID_ARGUMENT', 'decodePixels expects a Buffer');
  const parsed = readPixelDataSet(part10);
  const { info, element, dataSet } = parsed;
  const dtype = chooseDtype(parsed);
  const shape = info.samplesPerPixel > 1
    ? [info.frames, info.rows, info.columns, info.samplesPerPixel]
    : [info.frames, info.rows, info.columns];

  const arrayBytes = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
  if (arrayBytes > MAX_ARRAY_BYTES) {
    throw new PixelDecodeError('IMAGE_TOO_LARGE', `[${shape.join(', ')}] ${dtype} is ${arrayBytes} bytes, limit ${MAX_ARRAY_BYTES}`);
  }

  const ts = info.transferSyntaxUid;
  let data: Buffer;
  let signBits: number; // width of the two's complement value inside each sample
  if (NATIVE_SYNTAXES.has(ts)) {
    if (element.encapsulatedPixelData) {
      throw new PixelDecodeError('INVALID_DICOM', `encapsulated pixel data under native transfer syntax ${ts}`);
    }
    data = decodeNative(elementBytes(dataSet, element), nativeLayout(parsed), info.frames);
    signBits = info.bitsStored;
  } else if (ts === TS.rle || ts === TS.encapsulatedUncompressedLE || isCodecSyntax(ts)) {
    if (!element.encapsulatedPixelData) {
      throw new PixelDecodeError('INVALID_DICOM', `transfer syntax ${ts} requires encapsulated (undefined length) pixel data`);
    }
    if (parsed.kind !== 'PixelData') throw new PixelDecodeError('INVALID_DICOM', 'float pixel data cannot be encapsulated');
    ({ data, signBits } = await decodeEncapsulated(parsed, dtype));
  } else {
    throw new PixelDecodeError('UNSUPPORTED_TRANSFER_SYNTAX', `transfer syntax ${ts} is not supported`);
  }

  if (data.length !== arrayBytes) {
    // Internal invariant: every path above produces exactly the array size.
    throw new PixelDecodeError('CODEC_ERROR', `decoded ${data.length} bytes, expected ${arrayBytes}`);
  }
  if (info.pixelRepresentation === 1 && signBits < info.bitsAllocated) signExtendInPlace(data, dtype, signBits);
  return { info, array: { dtype, shape, data } };
}

function chooseDtype(p: ParsedPixels): Dtype {
  const { bitsAllocated: ba, pixelRepresentation: pr } = p.info;
  if (p.kind === 'FloatPixelData') {
    if (ba !== 32) throw new PixelDecodeError('INVALID_ATTRIBUTE', `Float Pixel Data with BitsAllocated ${ba}`);
    return 'float32';
  }
  if (p.kind === 'DoubleFloatPixelData') {
    if (ba !== 64) throw new PixelDecodeError('INVALID_ATTRIBUTE', `Double Float Pixel Data with BitsAllocated ${ba}`);
    return 'float64';
  }
  switch (ba) {
    case 1:
      return 'uint8'; // unpacked 0/1, like pydicom
    case 8:
      return pr ? 'int8' : 'uint8';
    case 16:
      return pr ? 'int16' : 'uint16';
    case 32:
      return pr ? 'int32' : 'uint32';
    default:
      throw new PixelDecodeError('UNSUPPORTED_PIXEL_FORMAT', `BitsAllocated ${ba} is not supported (1, 8, 16, 32 are)`);
  }
}

function nativeLayout(p: ParsedPixels): NativeLayout {
  return {
    rows: p.info.rows,
    columns: p.info.columns,
    samplesPerPixel: p.info.samplesPerPixel,
    storedSamplesPerPixel: p.storedSamplesPerPixel,
    planarConfiguration: p.planarConfiguration,
    bitsAllocated: p.info.bitsAllocated,
    bigEndian: p.bigEndian,
    vr: p.element.vr,
  };
}

function elementBytes(ds: dicomParser.DataSet, el: dicomParser.Element): Uint8Array {
  const bytes = ds.byteArray;
  if (el.dataOffset + el.length > bytes.length) {
    throw new PixelDecodeError('TRUNCATED_PIXEL_DATA', `pixel data runs ${el.dataOffset + el.length - bytes.length} bytes past the end of the file`);
  }
  return bytes.subarray(el.dataOffset, el.dataOffset + el.length);
}

/**
 * Decode every frame. `signBits` is BitsStored, except for JPEG 2000 whose codestream
 * precision wins when larger (pydicom's APPLY_J2K_CORRECTIONS also trusts the codestream):
 * sign-extending 16-bit decoded values from a smaller BitsStored would corrupt them.
 */
async function decodeEncapsulated(p: ParsedPixels, dtype: Dtype): Promise<{ data: Buffer; signBits: number }> {
  const { info } = p;
  const ts = info.transferSyntaxUid;
  const frames = splitFrames(p.dataSet, p.element, info.frames);
  const pixels = info.rows * info.columns;
  const bps = DTYPE_BYTES[dtype];
  const frameBytes = pixels * info.samplesPerPixel * bps;
  const out = Buffer.alloc(frameBytes * info.frames);
  if (isCodecSyntax(ts)) await prepareCodecs();
  let signBits = info.bitsStored;

  frames.forEach((frame, i) => {
    let decoded: Uint8Array;
    if (ts === TS.rle) {
      decoded = decodeRleFrame(frame, info.rows, info.columns, info.samplesPerPixel, info.bitsAllocated);
    } else if (ts === TS.encapsulatedUncompressedLE) {
      // Each fragment is one native little-endian frame (PS3.5 A.4.11).
      decoded = decodeNative(frame, { ...nativeLayout(p), bigEndian: false }, 1);
    } else {
      if (info.bitsAllocated === 1 || info.bitsAllocated > 16) {
        throw new PixelDecodeError('UNSUPPORTED_PIXEL_FORMAT', `compressed data with BitsAllocated ${info.bitsAllocated}`);
      }
      const r = decodeCodecFrame(frame, { ...info, transferSyntaxUid: ts });
      decoded = r.data;
      if (r.precision !== undefined) signBits = Math.max(signBits, r.precision);
      if (decoded.length * 2 === frameBytes && bps === 2) {
        // 8-bit codestream in a BitsAllocated 16 data set: widen, do not guess a different dtype.
        decoded = widen8to16(decoded);
      }
      if (r.planarConfiguration === 1 && info.samplesPerPixel > 1) {
        decoded = planarToInterleaved(decoded, pixels, info.samplesPerPixel, bps);
      }
    }
    // Codecs may add one pad byte to odd lengths; anything else is a wrong-sized frame.
    if (decoded.length !== frameBytes && decoded.length !== frameBytes + 1) {
      if (isCodecSyntax(ts)) distrustCodecs();
      throw new PixelDecodeError('CODEC_ERROR', `frame ${i} decoded to ${decoded.length} bytes, expected ${frameBytes}`);
    }
    out.set(decoded.subarray(0, frameBytes), i * frameBytes);
  });
  return { data: out, signBits };
}

function widen8to16(src: Uint8Array): Buffer {
  const out = Buffer.alloc(src.length * 2);
  for (let i = 0; i < src.length; i++) out[2 * i] = src[i];
  return out;
}
