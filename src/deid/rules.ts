import { Tag } from '../dicom/tags';
import { Override } from './settings';

/**
 * What happens to one element. Sequences kept by 'keep', 'clean' or 'uids-inside' have their
 * items processed again with the rules returned by `itemRules`.
 */
export type Action =
  | 'keep' // K
  | 'remove' // X
  | 'empty' // Z
  | 'dummy' // D
  | 'clean' // C: shift dates, scrub text, recurse into sequences
  | 'uid' // U
  | 'uids-inside' // X/Z/U* on a sequence: keep it, remap the UIDs in its items
  | 'patient-id'
  | 'patient-name'
  | { replace: string };

export interface ElementContext {
  tag: Tag;
  vr: string;
  /** Private creator of the element's block, for private elements. */
  creator: string | null;
  depth: number;
}

/** A top-level attribute the profile guarantees in every output (Type 2 attributes). */
export interface RequiredAttribute {
  tag: Tag;
  vr: string;
  action: 'empty' | 'patient-id' | 'patient-name';
}

export interface Rules {
  action(el: ElementContext): Action;
  itemRules(sequenceTag: Tag): Rules;
  /** Top-level attributes to add when the input lacks them. */
  required(): readonly RequiredAttribute[];
}

/** Per-run overrides sit on top of a profile, on top-level attributes only. */
export function withOverrides(rules: Rules, overrides: readonly Override[]): Rules {
  if (overrides.length === 0) return rules;
  const byTag = new Map(overrides.map((o) => [o.tag, o]));
  return {
    action(el) {
      const o = el.depth === 0 ? byTag.get(el.tag) : undefined;
      if (!o) return rules.action(el);
      return o.action === 'replace' ? { replace: o.value } : o.action;
    },
    itemRules: (tag) => rules.itemRules(tag),
    required: () => rules.required(),
  };
}
