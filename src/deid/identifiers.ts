import { Tag, T } from '../dicom/tags';
import { GENERATED_WORDS } from './dummy';

/**
 * Identifying values of one input, as raw bytes in the input's own character set (lower-cased
 * ASCII letters), so they can be searched for in output bytes and scrubbed from descriptors.
 */
export interface Identifier {
  kind: 'text' | 'number' | 'uid';
  bytes: Buffer;
  /** Keyword of the attribute it came from: names where a value was found, never the value. */
  source: string;
  sourceTag: Tag;
}

/** Attributes whose values are direct identifiers (besides every PN, which always is). */
export const IDENTIFYING_TAGS: ReadonlyMap<Tag, string> = new Map<Tag, string>([
  [T.PatientID, 'PatientID'],
  [T.OtherPatientIDs, 'OtherPatientIDs'],
  [T.AccessionNumber, 'AccessionNumber'],
  [T.PatientBirthDate, 'PatientBirthDate'],
  [T.PatientAddress, 'PatientAddress'],
  [0x00102154, 'PatientTelephoneNumbers'],
  [T.InstitutionName, 'InstitutionName'],
  [T.InstitutionAddress, 'InstitutionAddress'],
  [T.StationName, 'StationName'],
  [T.StudyInstanceUID, 'StudyInstanceUID'],
  [T.SeriesInstanceUID, 'SeriesInstanceUID'],
  [T.SOPInstanceUID, 'SOPInstanceUID'],
  [T.MediaStorageSOPInstanceUID, 'MediaStorageSOPInstanceUID'],
]);

const UID_TAGS = new Set<Tag>([T.StudyInstanceUID, T.SeriesInstanceUID, T.SOPInstanceUID, T.MediaStorageSOPInstanceUID]);
const MIN_TOKEN = 3;

/** Lower-cases ASCII letters only: bytes of other charsets stay as they are. */
export function asciiLower(b: Buffer): Buffer {
  const out = Buffer.from(b);
  for (let i = 0; i < out.length; i++) if (out[i] >= 0x41 && out[i] <= 0x5a) out[i] |= 0x20;
  return out;
}

/** Splits a value into the tokens worth searching for. */
export function identifiersOf(tag: Tag, vr: string, value: Buffer, source: string): Identifier[] {
  const text = value.toString('latin1').replace(/[\0 ]+$/, '');
  if (UID_TAGS.has(tag)) {
    return text.split('\\').filter((u) => u.length > 0).map((u) => ({ kind: 'uid', bytes: Buffer.from(u.trim(), 'latin1'), source, sourceTag: tag }));
  }
  // PN: every component of every component group ("Doe^John=..." -> Doe, John, ...).
  const tokens = vr === 'PN' ? text.split(/[\\^=]/) : text.split('\\');
  const out: Identifier[] = [];
  for (const raw of tokens) {
    const token = raw.trim();
    if (token.length < MIN_TOKEN) continue;
    const bytes = asciiLower(Buffer.from(token, 'latin1'));
    if (GENERATED_WORDS.has(bytes.toString('latin1'))) continue;
    out.push({ kind: /^[0-9.\-/ ]+$/.test(token) ? 'number' : 'text', bytes, source, sourceTag: tag });
  }
  return out;
}

const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
const isUidChar = (c: number | undefined): boolean => isDigit(c) || c === 0x2e;
const isWordChar = (c: number | undefined): boolean => isDigit(c) || (c !== undefined && ((c >= 0x61 && c <= 0x7a) || c === 0x5f));
/** Text in ISO 2022 / 8-bit charsets has no reliable ASCII word boundaries: match it anywhere. */
const plainAscii = (b: Buffer): boolean => b.every((c) => c >= 0x20 && c < 0x7f);

/**
 * Index of the first occurrence of an identifier in a lower-cased value, or -1. Matches are
 * whole words: a PatientID "123" is not found in "41234", UID 1.2.3 not in 1.2.3.4, and an
 * institution "TOSHIBA" not in the manufacturer "TOSHIBA_MEC".
 */
const boundaries = new WeakMap<Identifier, ((c: number | undefined) => boolean) | null>();
function boundaryOf(id: Identifier): ((c: number | undefined) => boolean) | null {
  let joined = boundaries.get(id);
  if (joined === undefined) {
    joined = id.kind === 'number' ? isDigit : id.kind === 'uid' ? isUidChar : plainAscii(id.bytes) ? isWordChar : null;
    boundaries.set(id, joined);
  }
  return joined;
}

export function findIn(haystack: Buffer, id: Identifier): number {
  const joined = boundaryOf(id);
  let from = 0;
  for (;;) {
    const i = haystack.indexOf(id.bytes, from);
    if (i < 0 || joined === null) return i;
    if (!joined(haystack[i - 1]) && !joined(haystack[i + id.bytes.length])) return i;
    from = i + 1;
  }
}
