/**
 * Minimal JPEG 2000 / HTJ2K main-header reader (ISO 15444-1 A.5.1, SIZ marker).
 * Needed because dcmjs-codecs' J2K decoder sizes its output from the data set's Rows/Columns,
 * not from the codestream: a mismatch silently yields a cropped or padded frame (and may
 * write past its buffer inside the WASM heap). We compare the two before decoding.
 */
export interface J2kHeader {
  width: number;
  height: number;
  components: number;
  /** Bit depth and signedness of component 0. */
  precision: number;
  signed: boolean;
}

const SOC = 0xff4f;
const SIZ = 0xff51;

/** Header of a raw codestream, or of the jp2c box of a JP2 file; undefined if none found. */
export function readJ2kHeader(b: Uint8Array): J2kHeader | undefined {
  // Raw codestream starts with SOC then SIZ; JP2-wrapped data (some encoders do it, against
  // PS3.5 A.4.4) has it later, so scan a bounded prefix for the SOC+SIZ pair.
  const limit = Math.min(b.length - 4, 4096);
  for (let i = 0; i <= limit; i++) {
    if (((b[i] << 8) | b[i + 1]) === SOC && ((b[i + 2] << 8) | b[i + 3]) === SIZ) return parseSiz(b, i + 4);
  }
  return undefined;
}

function parseSiz(b: Uint8Array, p: number): J2kHeader | undefined {
  // Lsiz(2) Rsiz(2) Xsiz(4) Ysiz(4) XOsiz(4) YOsiz(4) XTsiz(4) YTsiz(4) XTOsiz(4) YTOsiz(4) Csiz(2) Ssiz(1)...
  if (p + 41 > b.length) return undefined;
  const u32 = (o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  const xsiz = u32(p + 4);
  const ysiz = u32(p + 8);
  const xo = u32(p + 12);
  const yo = u32(p + 16);
  const components = (b[p + 36] << 8) | b[p + 37];
  const ssiz = b[p + 38];
  return { width: xsiz - xo, height: ysiz - yo, components, precision: (ssiz & 0x7f) + 1, signed: (ssiz & 0x80) !== 0 };
}
