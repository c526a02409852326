import { ByteSource } from '../dicom/byte-source';
import { DElement } from '../dicom/dataset';
import { lookup } from '../dicom/dictionary';
import { parseElements } from '../dicom/parser';
import { Tag, formatTag, isPrivateTag } from '../dicom/tags';
import { EXPLICIT_LE, Syntax } from '../dicom/transfer-syntax';
import { STRING_VRS } from '../dicom/vr';
import { Identifier, asciiLower, findIn } from './identifiers';

export interface Leak {
  /** Where in the output, e.g. "ImageComments (0020,4000)" or "X (gggg,eeee)[0].Y (gggg,eeee)". */
  path: string;
  /** Which kind of identifier leaked (the attribute it came from), never the value. */
  identifier: string;
}

const PIXEL_GROUP = 0x7fe0;
/** Coded-term parts come from controlled vocabularies ("TEST" as a scheme is not a patient). */
const CODED_TERM_TAGS: ReadonlySet<Tag> = new Set([0x00080100, 0x00080102, 0x00080103]);
const MAX_SCANNED = 16 << 20;

/**
 * The last gate before bytes leave: re-parses the encoded output (meta group and dataset,
 * not Pixel Data) and searches every text-bearing value for this input's identifiers. It
 * trusts nothing the profile decided, so it also catches what an override or option let through.
 */
export function findLeak(meta: ByteSource, metaStart: number, dataset: ByteSource, syntax: Syntax, identifiers: readonly Identifier[]): Leak | null {
  if (identifiers.length === 0) return null;
  const values: ScannedValue[] = [];
  collect(parseElements(meta, metaStart, meta.size, EXPLICIT_LE).elements, meta, null, 0, values);
  collect(parseElements(dataset, 0, dataset.size, syntax).elements, dataset, null, 0, values);
  return matchUids(values, identifiers) ?? matchText(values, identifiers);
}

/** Where a scanned value sits: its tag, inside item `index` of `parent` (a sequence), if any. */
interface Location {
  tag: Tag;
  parent: Location | null;
  index: number;
}

interface ScannedValue {
  at: Location;
  vr: string;
  bytes: Buffer;
}

/** The printable path of a location, built only when a leak is reported. */
function pathOf(at: Location): string {
  return `${at.parent ? `${pathOf(at.parent)}[${at.index}].` : ''}${label(at.tag)}`;
}

/** Every text-bearing value of the output with its location (Pixel Data and coded terms aside). */
function collect(elements: DElement[], src: ByteSource, parent: Location | null, index: number, out: ScannedValue[]): void {
  for (const el of elements) {
    if (el.items) {
      const seq: Location = { tag: el.tag, parent, index };
      el.items.forEach((item, i) => collect(item.elements, src, seq, i, out));
      continue;
    }
    if (el.tag >>> 16 === PIXEL_GROUP || el.fragments || el.length === 0 || el.length > MAX_SCANNED) continue;
    if (!STRING_VRS.has(el.vr) && el.vr !== 'UN' && !isPrivateTag(el.tag)) continue;
    if (CODED_TERM_TAGS.has(el.tag)) continue;
    out.push({ at: { tag: el.tag, parent, index }, vr: el.vr, bytes: src.slice(el.valueStart, el.valueStart + el.length) });
  }
}

/** Original UIDs: exact match against each value of every UI element. */
function matchUids(values: ScannedValue[], ids: readonly Identifier[]): Leak | null {
  const uids = new Map(ids.filter((id) => id.kind === 'uid').map((id) => [id.bytes.toString('latin1'), id.source]));
  if (uids.size === 0) return null;
  for (const v of values) {
    if (v.vr !== 'UI') continue;
    for (const uid of v.bytes.toString('latin1').replace(/[\0 ]+$/, '').split('\\')) {
      const source = uids.get(uid.trim());
      if (source) return { path: pathOf(v.at), identifier: source };
    }
  }
  return null;
}

/**
 * Text, numbers and UIDs inside other values: all non-UI values are lower-cased into one
 * buffer (NUL-separated, so no match spans two values) and each identifier is searched once.
 */
function matchText(values: ScannedValue[], ids: readonly Identifier[]): Leak | null {
  const text = values.filter((v) => v.vr !== 'UI');
  const starts: number[] = [];
  let size = 0;
  for (const v of text) {
    starts.push(size);
    size += v.bytes.length + 1;
  }
  const hay = Buffer.alloc(size);
  text.forEach((v, i) => v.bytes.copy(hay, starts[i]));
  const lower = asciiLower(hay);
  for (const id of ids) {
    const at = findIn(lower, id);
    if (at < 0) continue;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= at) lo = mid;
      else hi = mid - 1;
    }
    return { path: pathOf(text[lo].at), identifier: id.source };
  }
  return null;
}

function label(tag: Tag): string {
  const keyword = lookup(tag)?.keyword;
  return keyword ? `${keyword} ${formatTag(tag)}` : formatTag(tag);
}
