import { Tag, elementOf, groupOf } from './tags';

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
    if (raw) entry = { vr: normaliseVr(raw.vr), keyword: raw.name.replace(/^RETIRED_/, '') };
  }
  cache.set(tag, entry);
  return entry ?? undefined;
}

/** dcmjs marks ambiguous VRs as 'ox' (OB or OW) and 'xs' (US or SS); bytes are copied anyway. */
function normaliseVr(vr: string): string {
  if (vr === 'ox') return 'OW';
  if (vr === 'xs') return 'US';
  if (vr === 'na') return 'UN';
  return vr.length === 2 ? vr.toUpperCase() : 'UN';
}

export function tagForKeyword(keyword: string): Tag | undefined {
  const map = dcmjs.data.DicomMetaDictionary.nameMap;
  const entry = map[keyword] ?? map[`RETIRED_${keyword}`];
  if (!entry) return undefined;
  const m = /^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$/.exec(entry.tag);
  return m ? ((parseInt(m[1], 16) << 16) | parseInt(m[2], 16)) >>> 0 : undefined;
}
