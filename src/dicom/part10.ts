import * as zlib from 'node:zlib';
import { BufferSource, ByteSource } from './byte-source';
import { DDataset, findElement, stringValue } from './dataset';
import { DicomParseError } from './errors';
import { parseElements } from './parser';
import { T } from './tags';
import { EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE, Syntax, TS, TransferSyntax, transferSyntaxOf } from './transfer-syntax';
import { VALID_VRS } from './vr';

/** An inflated deflated dataset larger than this is treated as a decompression bomb. */
export const MAX_INFLATED_BYTES = 1 << 30;

export interface Instance {
  /** The file had the 128-byte preamble and "DICM". */
  hasPreamble: boolean;
  /** File Meta Information (group 0002), if the file had one. */
  meta: DDataset | null;
  transferSyntax: TransferSyntax;
  dataset: DDataset;
}

const DICM = Buffer.from('DICM', 'latin1');

/**
 * Reads a Part 10 file, or a bare dataset without preamble/meta (the syntax is then inferred
 * from the first element, as DCMTK does). Throws DicomParseError('NOT_DICOM') when neither fits.
 */
export function readInstance(src: ByteSource): Instance {
  let pos = 0;
  let hasPreamble = false;
  if (src.size >= 132 && hasMagic(src, 128)) {
    pos = 132;
    hasPreamble = true;
  } else if (src.size >= 4 && hasMagic(src, 0)) {
    pos = 4;
  }
  if (src.size - pos < 8) throw new DicomParseError('NOT_DICOM', `not DICOM: only ${src.size} bytes`);

  let meta: DDataset | null = null;
  const [b, o] = src.view(pos, 8);
  if (b.readUInt16LE(o) === 0x0002) {
    // The meta group is explicit VR LE by definition; a few writers use implicit VR anyway.
    const syntax = looksExplicit(b, o) ? EXPLICIT_LE : IMPLICIT_LE;
    const r = parseElements(src, pos, src.size, syntax, 0, { onlyGroup: 0x0002 });
    meta = { src, syntax, elements: r.elements, start: pos, end: r.end };
    pos = r.end;
  } else if (!hasPreamble && !looksLikeDatasetStart(b, o)) {
    throw new DicomParseError('NOT_DICOM', 'not DICOM: no "DICM" marker and no recognisable first element');
  }

  const tsElement = meta ? findElement(meta.elements, T.TransferSyntaxUID) : undefined;
  const transferSyntax = tsElement
    ? transferSyntaxOf(stringValue(src, tsElement))
    : inferSyntax(src, pos);

  if (transferSyntax.deflated) {
    const inflated = inflate(src.slice(pos, src.size));
    const dsrc = new BufferSource(inflated);
    const r = parseElements(dsrc, 0, dsrc.size, transferSyntax);
    return { hasPreamble, meta, transferSyntax, dataset: { src: dsrc, syntax: transferSyntax, elements: r.elements, start: 0, end: r.end } };
  }
  const syntax = pos < src.size ? checkedSyntax(src, pos, transferSyntax) : transferSyntax;
  const r = parseElements(src, pos, src.size, syntax);
  return { hasPreamble, meta, transferSyntax: { ...transferSyntax, ...syntax }, dataset: { src, syntax, elements: r.elements, start: pos, end: r.end } };
}

function hasMagic(src: ByteSource, at: number): boolean {
  const [b, o] = src.view(at, 4);
  return b.compare(DICM, 0, 4, o, o + 4) === 0;
}

/** The 2 bytes after the tag are a VR: explicit VR encoding. */
export function looksExplicit(b: Buffer, o: number): boolean {
  return VALID_VRS.has(String.fromCharCode(b[o + 4], b[o + 5]));
}

/** A bare dataset starts with a low even group (0008 most often) or a private group. */
export function looksLikeDatasetStart(b: Buffer, o: number): boolean {
  const le = b.readUInt16LE(o);
  const be = b.readUInt16BE(o);
  return (le >= 0x0002 && le <= 0x00ff) || (be >= 0x0002 && be <= 0x00ff && looksExplicit(b, o));
}

function inferSyntax(src: ByteSource, pos: number): TransferSyntax {
  if (src.size - pos < 8) return transferSyntaxOf(TS.ImplicitLittle);
  const [b, o] = src.view(pos, 8);
  return inferSyntaxAt(b, o);
}

/** The transfer syntax of a dataset without meta, from the 8 bytes of its first element. */
export function inferSyntaxAt(b: Buffer, o: number): TransferSyntax {
  if (b.readUInt16LE(o) > 0x00ff && b.readUInt16BE(o) <= 0x00ff && looksExplicit(b, o)) return transferSyntaxOf(TS.ExplicitBig);
  return transferSyntaxOf(looksExplicit(b, o) ? TS.ExplicitLittle : TS.ImplicitLittle);
}

/**
 * Some writers label implicit VR data as explicit (and the reverse). Like DCMTK, trust the
 * bytes of the first element over the label; the output keeps the syntax actually used.
 */
function checkedSyntax(src: ByteSource, pos: number, ts: TransferSyntax): Syntax {
  if (src.size - pos < 8) return ts;
  const [b, o] = src.view(pos, 8);
  return checkSyntaxAt(b, o, ts);
}

/** The syntax the 8 bytes of a first element at b[o] are really in, given the labelled one. */
export function checkSyntaxAt(b: Buffer, o: number, ts: TransferSyntax): Syntax {
  const explicit = looksExplicit(b, o);
  if (ts.explicit === explicit) return ts;
  if (ts.little) return explicit ? EXPLICIT_LE : IMPLICIT_LE;
  return explicit ? EXPLICIT_BE : ts;
}

function inflate(raw: Buffer): Buffer {
  try {
    return zlib.inflateRawSync(raw, { maxOutputLength: MAX_INFLATED_BYTES });
  } catch (err) {
    throw new DicomParseError('BAD_DEFLATE', `deflated dataset cannot be inflated: ${(err as Error).message}`);
  }
}
