/**
 * Frame decoders from dcmjs-codecs' WASM (libjpeg with 8/12/16-bit builds, CharLS, OpenJPEG,
 * OpenJPH). We call the per-frame `NativeCodecs.decode*` functions directly instead of the
 * Transcoder, because the Transcoder naturalizes the whole data set (see
 * NOTES-libraries.md) and its codec table lacks JPEG extended (4.51), which the JPEG
 * decoder itself handles (verified against DCMTK dcmdjpeg in the tests).
 */
import { Context, NativeCodecs } from 'dcmjs-codecs';
import { PixelDecodeError, describeThrown } from './errors';
import { TS } from './dataset';
import { readJ2kHeader } from './j2k';
import { jpegLsDecodesPlanar } from './jpegls';

type DecodeFn = 'decodeJpeg' | 'decodeJpegLs' | 'decodeJpeg2000' | 'decodeHtJpeg2000';

const DECODER: Record<string, DecodeFn> = {
  [TS.jpegBaseline]: 'decodeJpeg',
  [TS.jpegExtended]: 'decodeJpeg',
  [TS.jpegLosslessP14]: 'decodeJpeg',
  [TS.jpegLosslessSV1]: 'decodeJpeg',
  [TS.jpegLsLossless]: 'decodeJpegLs',
  [TS.jpegLsNearLossless]: 'decodeJpegLs',
  [TS.j2kLossless]: 'decodeJpeg2000',
  [TS.j2k]: 'decodeJpeg2000',
  [TS.htj2kLossless]: 'decodeHtJpeg2000',
  [TS.htj2kLosslessRpcl]: 'decodeHtJpeg2000',
  [TS.htj2k]: 'decodeHtJpeg2000',
};

export function isCodecSyntax(ts: string): boolean {
  return ts in DECODER;
}

// The WASM module's list (its index is what crosses into C++); anything else would be -1.
const KNOWN_PHOTOMETRIC = new Set([
  'MONOCHROME1', 'MONOCHROME2', 'PALETTE COLOR', 'RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_PARTIAL_422',
  'YBR_PARTIAL_420', 'YBR_ICT', 'YBR_RCT', 'CMYK', 'ARGB', 'HSV',
]);

let ready: Promise<void> | undefined;
let poisoned = false;

/**
 * Load the WASM once. A C++ exception unwinds through JS (onCodecsException throws) and leaves
 * the decoder context allocated and possibly half-built state behind, so after any codec error
 * the module is released and re-instantiated on the next call.
 */
async function ensureCodecs(): Promise<void> {
  if (poisoned) {
    NativeCodecs.release();
    ready = undefined;
    poisoned = false;
  }
  ready ??= NativeCodecs.initializeAsync({ logCodecsInfo: false, logCodecsTrace: false }).catch((e: unknown) => {
    ready = undefined;
    throw new PixelDecodeError('CODEC_ERROR', `cannot load dcmjs-codecs WASM: ${describeThrown(e)}`, { cause: e });
  });
  return ready;
}

export interface CodecFrameParams {
  transferSyntaxUid: string;
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  photometric: string;
}

export interface DecodedFrame {
  data: Uint8Array;
  /** 1 if the codec handed back colour-by-plane; the caller interleaves. */
  planarConfiguration: number;
  /** JPEG 2000 only: the codestream's bit depth, which may differ from BitsStored. */
  precision?: number;
}

/**
 * The caller found the decoder's output inconsistent (wrong size): the codestream disagreed
 * with the data set, so do not trust the WASM heap any more either.
 */
export function distrustCodecs(): void {
  poisoned = true;
}

/**
 * Must be awaited before `decodeCodecFrame`, and the frames then decoded without another
 * await. The loop matters with concurrent calls: another decodePixels may have poisoned the
 * module between our await resolving and our continuation running.
 */
export async function prepareCodecs(): Promise<void> {
  do await ensureCodecs();
  while (poisoned);
}

export function decodeCodecFrame(frame: Buffer, p: CodecFrameParams): DecodedFrame {
  const fn = DECODER[p.transferSyntaxUid];
  if (!fn) throw new PixelDecodeError('UNSUPPORTED_TRANSFER_SYNTAX', `no decoder for ${p.transferSyntaxUid}`);
  const precision = fn === 'decodeJpeg2000' || fn === 'decodeHtJpeg2000' ? checkJ2kGeometry(frame, p) : undefined;
  const photometric = KNOWN_PHOTOMETRIC.has(p.photometric)
    ? p.photometric
    : p.samplesPerPixel === 1
      ? 'MONOCHROME2'
      : 'RGB';
  const ctx = new Context({
    width: p.columns,
    height: p.rows,
    bitsAllocated: p.bitsAllocated,
    bitsStored: p.bitsStored,
    samplesPerPixel: p.samplesPerPixel,
    pixelRepresentation: p.pixelRepresentation,
    planarConfiguration: 0,
    photometricInterpretation: photometric,
    encodedBuffer: new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength),
  });
  try {
    // convertColorspaceToRgb:false keeps YBR_FULL / YBR_FULL_422 JPEG data in YCbCr, as
    // pydicom 2.3 returns it (its Pillow handler calls draft('YCbCr')); see decode.ts.
    const out = NativeCodecs[fn](ctx, { convertColorspaceToRgb: false });
    const data = out.getDecodedBuffer();
    if (!data) throw new Error('decoder returned no buffer');
    const planar = (out.getPlanarConfiguration() ?? 0) === 1 || (fn === 'decodeJpegLs' && jpegLsDecodesPlanar(frame, p.samplesPerPixel));
    return { data, planarConfiguration: planar ? 1 : 0, precision };
  } catch (e) {
    poisoned = true;
    if (p.transferSyntaxUid === TS.jpegExtended) {
      throw new PixelDecodeError(
        'UNSUPPORTED_TRANSFER_SYNTAX',
        `JPEG Extended (1.2.840.10008.1.2.4.51) frame could not be decoded by dcmjs-codecs: ${describeThrown(e)}`,
        { cause: e },
      );
    }
    throw new PixelDecodeError('CODEC_ERROR', `${fn} failed: ${describeThrown(e)}`, { cause: e });
  }
}

/** Throws unless the codestream matches the data set; returns its precision. */
function checkJ2kGeometry(frame: Buffer, p: CodecFrameParams): number {
  const h = readJ2kHeader(frame);
  if (!h) throw new PixelDecodeError('CODEC_ERROR', 'JPEG 2000 frame has no SOC/SIZ main header');
  if (h.width !== p.columns || h.height !== p.rows || h.components !== p.samplesPerPixel) {
    throw new PixelDecodeError(
      'CODEC_ERROR',
      `JPEG 2000 codestream is ${h.width}x${h.height}x${h.components}, data set says ` +
        `${p.columns}x${p.rows}x${p.samplesPerPixel}`,
    );
  }
  if (h.precision > p.bitsAllocated) {
    throw new PixelDecodeError('CODEC_ERROR', `JPEG 2000 precision ${h.precision} exceeds BitsAllocated ${p.bitsAllocated}`);
  }
  return h.precision;
}
