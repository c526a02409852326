import { DICTIONARY_SUPPLEMENT } from './dictionary-supplement';
import { Tag, elementOf, groupOf } from './tags';
import { VALID_VRS } from './vr';

// dcmjs ships the PS3.6 dictionary (and the repeating-group ranges such as 60xx); it has no
// types, so the few functions used here are typed locally.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dcmjs = require('dcmjs') as {
  data: { DicomMetaDictionary: { dictionary: Record<string, { vr: string; name: string } | undefined>; nameMap: Record<string, { tag: string } | undefined> } };
};

export interface DictEntry {
  vr: string;
  keyword: string;
}

const cache = new Map<Tag, DictEntry | null>();

/** Dictionary entry of a standard tag (repeating groups resolved), or undefined. */
export function lookup(tag: Tag): DictEntry | undefined {
  const hit = cache.get(tag);
  if (hit !== undefined) return hit ?? undefined;
  let entry: DictEntry | null = null;
  if (elementOf(tag) === 0) {
    entry = { vr: 'UL', keyword: 'GroupLength' };
  } else if ((groupOf(tag) & 1) === 0) {
    const hex = tag.toString(16).toUpperCase().padStart(8, '0');
    const raw = dcmjs.data.DicomMetaDictionary.dictionary[hex];
    const extra = DICTIONARY_SUPPLEMENT[`(${hex.slice(0, 4)},${hex.slice(4)})`];
    if (raw) entry = { vr: normaliseVr(raw.vr), keyword: raw.name.replace(/^RETIRED_/, '') };
    else if (extra) entry = { vr: extra.vr, keyword: extra.keyword };
  }
  cache.set(tag, entry);
  return entry ?? undefined;
}

/**
 * dcmjs marks ambiguous VRs in lower case: 'ox' (OB or OW), 'xs' (US or SS), 'lt' (LUT data,
 * US or OW), 'up' (UL or pointer), 'na' (items). Bytes are copied anyway; what matters is that
 * binary data is never taken for text.
 */
const PSEUDO_VRS: Record<string, string> = { ox: 'OW', xs: 'US', lt: 'OW', up: 'UL', na: 'UN' };
function normaliseVr(vr: string): string {
  return PSEUDO_VRS[vr] ?? (VALID_VRS.has(vr) ? vr : 'UN');
}

export function tagForKeyword(keyword: string): Tag | undefined {
  const map = dcmjs.data.DicomMetaDictionary.nameMap;
  const tagText = (map[keyword] ?? map[`RETIRED_${keyword}`])?.tag ?? Object.keys(DICTIONARY_SUPPLEMENT).find((k) => DICTIONARY_SUPPLEMENT[k].keyword === keyword);
  if (!tagText) return undefined;
  const m = /^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$/.exec(tagText);
  return m ? ((parseInt(m[1], 16) << 16) | parseInt(m[2], 16)) >>> 0 : undefined;
}
