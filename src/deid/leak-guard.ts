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
  const metaEls = parseElements(meta, metaStart, meta.size, EXPLICIT_LE).elements;
  return scan(metaEls, meta, identifiers, '') ?? scan(parseElements(dataset, 0, dataset.size, syntax).elements, dataset, identifiers, '');
}

function scan(elements: DElement[], src: ByteSource, ids: readonly Identifier[], prefix: string): Leak | null {
  for (const el of elements) {
    const path = prefix + label(el.tag);
    if (el.items) {
      for (let i = 0; i < el.items.length; i++) {
        const hit = scan(el.items[i].elements, src, ids, `${path}[${i}].`);
        if (hit) return hit;
      }
      continue;
    }
    if (el.tag >>> 16 === PIXEL_GROUP || el.fragments || el.length === 0 || el.length > MAX_SCANNED) continue;
    if (!STRING_VRS.has(el.vr) && el.vr !== 'UN' && !isPrivateTag(el.tag)) continue;
    if (CODED_TERM_TAGS.has(el.tag)) continue;
    const bytes = src.slice(el.valueStart, el.valueStart + el.length);
    const hit = el.vr === 'UI' ? matchUids(bytes, ids) : matchText(asciiLower(bytes), ids);
    if (hit) return { path, identifier: hit.source };
  }
  return null;
}

function matchUids(bytes: Buffer, ids: readonly Identifier[]): Identifier | undefined {
  const values = bytes.toString('latin1').replace(/[\0 ]+$/, '').split('\\').map((v) => v.trim());
  return ids.find((id) => id.kind === 'uid' && values.includes(id.bytes.toString('latin1')));
}

function matchText(lower: Buffer, ids: readonly Identifier[]): Identifier | undefined {
  return ids.find((id) => findIn(lower, id) >= 0);
}

function label(tag: Tag): string {
  const keyword = lookup(tag)?.keyword;
  return keyword ? `${keyword} ${formatTag(tag)}` : formatTag(tag);
}
