/**
 * Reads the identifying UIDs of a STOW-RS part from its first bytes (kept in memory while the
 * whole part streams into the spool), with the project's parser: the File Meta group, then the
 * data set group by group (`parseElements` with `onlyGroup`) up to and including group 0020.
 * Groups 0008-0020 are small in practice (Pixel Data is 7FE0), so a few MB of head are enough.
 */
import * as zlib from 'node:zlib';
import { BufferSource, ByteSource } from '../../dicom/byte-source';
import { DElement, findElement, stringValue } from '../../dicom/dataset';
import { DicomParseError } from '../../dicom/errors';
import { parseElements } from '../../dicom/parser';
import { T } from '../../dicom/tags';
import { checkSyntaxAt, inferSyntaxAt, looksExplicit, looksLikeDatasetStart } from '../../dicom/part10';
import { EXPLICIT_LE, IMPLICIT_LE, Syntax, TransferSyntax, transferSyntaxOf } from '../../dicom/transfer-syntax';

export interface PartIds {
  /** MediaStorageSOPClassUID of the meta group, else the data set's SOPClassUID. */
  sopClassUid?: string;
  /** MediaStorageSOPInstanceUID of the meta group, else the data set's SOPInstanceUID. */
  sopInstanceUid?: string;
  studyUid?: string;
  seriesUid?: string;
}

export type HeadResult =
  /** Group 0020 was read completely (studyUid is undefined only when the data set has none). */
  | { status: 'ok'; ids: PartIds }
  /** The head ended before group 0020 did: ids holds what the meta group gave. */
  | { status: 'incomplete'; ids: PartIds }
  /** The bytes are not a readable DICOM file (the spool will quarantine it on commit). */
  | { status: 'malformed'; ids: PartIds; error: DicomParseError };

/** Compressed bytes of a deflated data set inflated to find group 0020, and the output cap. */
const DEFLATE_INPUT = 1 << 20;
const DEFLATE_OUTPUT = 64 << 20;
const DICM = Buffer.from('DICM', 'latin1');

/**
 * `head` is the first bytes of the part; `complete` says it is the whole part (then running out
 * of bytes is a truncated file, not a short head).
 */
export function inspectHead(head: Buffer, complete: boolean): HeadResult {
  const ids: PartIds = {};
  try {
    return walk(head, complete, ids);
  } catch (err) {
    if (err instanceof DicomParseError) {
      if (err.code === 'TRUNCATED' && !complete) return { status: 'incomplete', ids };
      return { status: 'malformed', ids, error: err };
    }
    if (err instanceof RangeError && !complete) return { status: 'incomplete', ids };
    throw err;
  }
}

function walk(head: Buffer, complete: boolean, ids: PartIds): HeadResult {
  // Fewer bytes than a preamble: whether there is one is not known yet.
  if (!complete && head.length < 132) return { status: 'incomplete', ids };
  const src = new BufferSource(head);
  let pos = 0;
  let hasPreamble = false;
  if (src.size >= 132 && head.compare(DICM, 0, 4, 128, 132) === 0) {
    pos = 132;
    hasPreamble = true;
  } else if (src.size >= 4 && head.compare(DICM, 0, 4, 0, 4) === 0) {
    pos = 4;
  }
  if (src.size - pos < 8) {
    if (!complete) return { status: 'incomplete', ids };
    throw new DicomParseError('NOT_DICOM', `not DICOM: only ${src.size} bytes`);
  }

  let ts: TransferSyntax | undefined;
  if (head.readUInt16LE(pos) === 0x0002) {
    const metaSyntax = looksExplicit(head, pos) ? EXPLICIT_LE : IMPLICIT_LE;
    const r = parseElements(src, pos, src.size, metaSyntax, 0, { onlyGroup: 0x0002 });
    ids.sopClassUid = str(src, r.elements, T.MediaStorageSOPClassUID);
    ids.sopInstanceUid = str(src, r.elements, T.MediaStorageSOPInstanceUID);
    const tsUid = str(src, r.elements, T.TransferSyntaxUID);
    if (tsUid !== undefined) ts = transferSyntaxOf(tsUid);
    pos = r.end;
  } else if (!hasPreamble && !looksLikeDatasetStart(head, pos)) {
    throw new DicomParseError('NOT_DICOM', 'not DICOM: no "DICM" marker and no recognisable first element');
  }
  if (pos >= src.size) {
    if (!complete) return { status: 'incomplete', ids };
    throw new DicomParseError('TRUNCATED', 'no data set after the File Meta group', pos);
  }

  let ds: ByteSource = src;
  let dsComplete = complete;
  let syntax: Syntax;
  if (ts?.deflated) {
    const raw = head.subarray(pos, Math.min(head.length, pos + DEFLATE_INPUT));
    let inflated: Buffer;
    try {
      inflated = zlib.inflateRawSync(raw, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: DEFLATE_OUTPUT });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return { status: 'incomplete', ids };
      throw new DicomParseError('BAD_DEFLATE', `deflated data set cannot be inflated: ${(err as Error).message}`);
    }
    ds = new BufferSource(inflated);
    dsComplete = complete && raw.length === head.length - pos;
    pos = 0;
    syntax = EXPLICIT_LE;
    // A complete deflated stream may inflate to nothing useful; running out is then a real truncation.
    if (ds.size === 0) {
      if (!dsComplete) return { status: 'incomplete', ids };
      throw new DicomParseError('TRUNCATED', 'empty deflated data set', 0);
    }
  } else {
    // As readInstance does: the first element's bytes win over a wrong explicit/implicit label.
    const labelled = ts ?? inferSyntaxAt(head, pos);
    syntax = src.size - pos < 8 ? labelled : checkSyntaxAt(head, pos, labelled);
  }

  const elementsOf: DElement[] = [];
  while (pos < ds.size) {
    if (ds.size - pos < 2) break;
    const [b, o] = ds.view(pos, 2);
    const group = syntax.little ? b.readUInt16LE(o) : b.readUInt16BE(o);
    if (group > 0x0020) return done(ds, elementsOf, ids);
    const r = parseElements(ds, pos, ds.size, syntax, 0, { onlyGroup: group });
    if (group === 0x0008 || group === 0x0020) elementsOf.push(...r.elements);
    if (r.end === pos) throw new DicomParseError('BAD_ITEM', 'no progress reading the data set', pos);
    pos = r.end;
    // Group 0020 read to its end (the next element is of another group, or the data set ends here).
    if (group === 0x0020 && (pos < ds.size || dsComplete)) return done(ds, elementsOf, ids);
  }
  if (!dsComplete) return { status: 'incomplete', ids: fill(ds, elementsOf, ids) };
  if (pos < ds.size) throw new DicomParseError('TRUNCATED', 'data ends inside an element header', pos);
  return done(ds, elementsOf, ids);
}

function done(src: ByteSource, elements: DElement[], ids: PartIds): HeadResult {
  return { status: 'ok', ids: fill(src, elements, ids) };
}

function fill(src: ByteSource, elements: DElement[], ids: PartIds): PartIds {
  ids.sopClassUid ||= str(src, elements, T.SOPClassUID);
  ids.sopInstanceUid ||= str(src, elements, T.SOPInstanceUID);
  ids.studyUid = str(src, elements, T.StudyInstanceUID);
  ids.seriesUid = str(src, elements, T.SeriesInstanceUID);
  return ids;
}

function str(src: ByteSource, elements: DElement[], tag: number): string | undefined {
  const el = findElement(elements, tag);
  if (!el || el.length === 0 || el.length > 256 || el.items || el.fragments) return undefined;
  const v = stringValue(src, el);
  return v || undefined;
}


