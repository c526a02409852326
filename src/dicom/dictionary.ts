import { DICTIONARY_SUPPLEMENT } from './dictionary-supplement';
import { DICTIONARY_TEXT } from './dictionary.generated';
import { Tag, elementOf, groupOf } from './tags';
import { VALID_VRS } from './vr';

export interface DictEntry {
  vr: string;
  keyword: string;
}

/**
 * dcmjs marks ambiguous VRs in lower case: 'ox' (OB or OW), 'xs' (US or SS), 'lt' (LUT data,
 * US or OW), 'up' (UL or pointer), 'na' (items). Bytes are copied anyway; what matters is that
 * binary data is never taken for text.
 */
const PSEUDO_VRS: Record<string, string> = { ox: 'OW', xs: 'US', lt: 'OW', up: 'UL', na: 'UN' };
const normaliseVr = (vr: string): string => PSEUDO_VRS[vr] ?? (VALID_VRS.has(vr) ? vr : 'UN');

let byTag: Map<Tag, DictEntry> | undefined;
let byKeyword: Map<string, Tag> | undefined;

/** Parses the generated dictionary once (about 5,000 lines, a few milliseconds). */
function load(): void {
  byTag = new Map();
  byKeyword = new Map();
  const add = (tag: Tag, vr: string, keyword: string): void => {
    byTag!.set(tag, { vr: normaliseVr(vr), keyword });
    if (!byKeyword!.has(keyword)) byKeyword!.set(keyword, tag);
  };
  for (const line of DICTIONARY_TEXT.split('\n')) {
    if (line.length < 12) continue;
    const [hex, vr, keyword] = line.split(' ');
    add(parseInt(hex, 16) >>> 0, vr, keyword);
  }
  for (const [text, e] of Object.entries(DICTIONARY_SUPPLEMENT)) {
    add(parseInt(text.slice(1, 5) + text.slice(6, 10), 16) >>> 0, e.vr, e.keyword);
  }
}

/** Repeating groups (curves 50xx, overlays 60xx) are listed under their first group. */
function canonical(tag: Tag): Tag {
  const group = groupOf(tag);
  const family = group & 0xff00;
  if ((family === 0x5000 || family === 0x6000) && (group & 1) === 0) return ((family << 16) | elementOf(tag)) >>> 0;
  return tag;
}

/** Dictionary entry of a standard tag (repeating groups resolved), or undefined. */
export function lookup(tag: Tag): DictEntry | undefined {
  if (!byTag) load();
  if (elementOf(tag) === 0) return { vr: 'UL', keyword: 'GroupLength' };
  if ((groupOf(tag) & 1) === 1) return undefined;
  return byTag!.get(tag) ?? byTag!.get(canonical(tag));
}

export function tagForKeyword(keyword: string): Tag | undefined {
  if (!byKeyword) load();
  return byKeyword!.get(keyword);
}
