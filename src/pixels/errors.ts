/**
 * Typed error for everything that can go wrong between Part 10 bytes and a pixel array.
 * Callers (the `extract` command) switch on `code`, never on the message text.
 */
export type PixelErrorCode =
  | 'NOT_DICOM' // no "DICM" prefix at offset 128
  | 'INVALID_DICOM' // the data set itself cannot be parsed
  | 'NO_PIXEL_DATA' // none of (7FE0,0010), (7FE0,0008), (7FE0,0009)
  | 'MISSING_ATTRIBUTE' // Rows, Columns, BitsAllocated, ... absent
  | 'INVALID_ATTRIBUTE' // present but impossible (Rows 0, BitsStored > BitsAllocated, ...)
  | 'IMAGE_TOO_LARGE' // decoded array would exceed MAX_ARRAY_BYTES (guards corrupt Rows/frames)
  | 'TRUNCATED_PIXEL_DATA' // fewer bytes than the image attributes require
  | 'UNSUPPORTED_TRANSFER_SYNTAX'
  | 'UNSUPPORTED_PIXEL_FORMAT' // e.g. BitsAllocated 12 or 64, RLE of 1-bit data
  | 'FRAME_SPLIT_FAILED' // encapsulated fragments cannot be mapped onto frames
  | 'CODEC_ERROR' // a decoder rejected a frame or returned the wrong size
  | 'UNSUPPORTED_DTYPE' // a writer cannot store this dtype without losing bits
  | 'INVALID_ARGUMENT';

export class PixelDecodeError extends Error {
  readonly code: PixelErrorCode;

  constructor(code: PixelErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'PixelDecodeError';
    this.code = code;
  }
}

/** dicom-parser and the WASM glue throw strings and plain objects; make them readable. */
export function describeThrown(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && 'exception' in e) return describeThrown((e as { exception: unknown }).exception);
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}
