import { Tag, T, elementOf, groupOf, isPrivateTag } from '../dicom/tags';
import { BASIC_PROFILE } from './profiles/basic-profile.generated';
import { SAFE_PRIVATE } from './profiles/safe-private.generated';
import { ActionCode, OptionName, OPTION_NAMES, ProfileRow } from './profiles/types';
import { Action, ElementContext, Rules } from './rules';

const ROWS = new Map<Tag, ProfileRow>();
let CURVE_ROW: ProfileRow | undefined;
let OVERLAY_DATA_ROW: ProfileRow | undefined;
let OVERLAY_COMMENTS_ROW: ProfileRow | undefined;
let PRIVATE_ROW: ProfileRow | undefined;
for (const row of BASIC_PROFILE) {
  const m = /^\(([0-9A-F]{4}),([0-9A-F]{4})\)$/i.exec(row.tag);
  if (m) ROWS.set(((parseInt(m[1], 16) << 16) | parseInt(m[2], 16)) >>> 0, row);
  else if (row.tag.startsWith('(50xx')) CURVE_ROW = row;
  else if (row.tag === '(60xx,3000)') OVERLAY_DATA_ROW = row;
  else if (row.tag === '(60xx,4000)') OVERLAY_COMMENTS_ROW = row;
  else if (row.tag.startsWith('(gggg')) PRIVATE_ROW = row;
}

const SAFE = new Set(SAFE_PRIVATE.map((r) => safeKey(r.group, r.creator, r.elementByte)));
function safeKey(group: number, creator: string, elementByte: number): string {
  return `${group}|${creator.trim().toUpperCase()}|${elementByte}`;
}

/** Is this private element on Table E.3.10-1 (matched by creator, wherever its block sits)? */
export function isSafePrivate(tag: Tag, creator: string | null): boolean {
  return creator !== null && SAFE.has(safeKey(groupOf(tag), creator, elementOf(tag) & 0xff));
}

/** The table row that governs a standard tag, repeating groups included. */
export function rowFor(tag: Tag): ProfileRow | undefined {
  const group = groupOf(tag);
  if ((group & 0xff00) === 0x5000 && (group & 1) === 0) return CURVE_ROW;
  if ((group & 0xff00) === 0x6000 && (group & 1) === 0) {
    if (elementOf(tag) === 0x3000) return OVERLAY_DATA_ROW;
    if (elementOf(tag) === 0x4000) return OVERLAY_COMMENTS_ROW;
  }
  return ROWS.get(tag);
}

/**
 * The code in effect for a row. When several options in effect fill the row's cell, C wins
 * over K: e.g. a detector calibration date under Retain Device Identity (K) and Modified
 * Dates (C) is shifted, never kept as it was.
 */
export function effectiveCode(row: ProfileRow, options: ReadonlySet<OptionName>): ActionCode {
  let code: ActionCode = row.basic;
  let filled = false;
  for (const option of OPTION_NAMES) {
    const cell = row.options[option];
    if (!cell || !options.has(option)) continue;
    if (!filled || cell === 'C') code = cell;
    filled = true;
  }
  return code;
}

/**
 * Combined codes depend on the attribute's Type in the IOD, which varies by IOD and module.
 * Without per-IOD tables the engine takes the branch that can never make a conformant object
 * non-conformant and never keeps an original value: present stays present (Z for X/Z), a
 * possibly Type 1 value gets a dummy (D for X/D, Z/D, X/Z/D), and X/Z/U* keeps the reference
 * sequence with its UIDs remapped, so references between de-identified instances still work.
 */
export function actionForCode(code: ActionCode): Action {
  switch (code) {
    case 'X': return 'remove';
    case 'Z': return 'empty';
    case 'D': return 'dummy';
    case 'U': return 'uid';
    case 'K': return 'keep';
    case 'C': return 'clean';
    case 'X/Z': return 'empty';
    case 'X/D':
    case 'Z/D':
    case 'X/Z/D': return 'dummy';
    case 'X/Z/U*': return 'uids-inside';
  }
}

/** The basic profile: Table E.1-1 with the options in effect, the same at every depth. */
export function basicRules(options: ReadonlySet<OptionName>): Rules {
  const rules: Rules = {
    action(el: ElementContext): Action {
      if (el.depth === 0 && el.tag === T.PatientID) return 'patient-id';
      if (el.depth === 0 && el.tag === T.PatientName) return 'patient-name';
      if (isPrivateTag(el.tag)) {
        const keep = options.has('retainSafePrivate') && PRIVATE_ROW?.options.retainSafePrivate && isSafePrivate(el.tag, el.creator);
        return keep ? 'keep' : 'remove';
      }
      const row = rowFor(el.tag);
      // Attributes the table does not list are not identifying by the standard's analysis.
      return row ? actionForCode(effectiveCode(row, options)) : 'keep';
    },
    itemRules: () => rules,
    required: () => [],
  };
  return rules;
}
