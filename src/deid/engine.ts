import { ByteSource } from '../dicom/byte-source';
import { DElement, valueBytes } from '../dicom/dataset';
import { T, Tag, UNDEFINED_LENGTH, isGroupLength, isPrivateCreator } from '../dicom/tags';
import { Syntax } from '../dicom/transfer-syntax';
import { encodeString } from '../dicom/values';
import { STRING_VRS } from '../dicom/vr';
import { OutItem, OutNode } from '../dicom/writer';
import { scrubText } from './clean';
import { shiftDA, shiftDT } from './dates';
import { dummyBinary, dummyString } from './dummy';
import { Identifier, IDENTIFYING_TAGS, identifiersOf } from './identifiers';
import { blockOf, creatorOf, privateCreators } from './private-blocks';
import { Pseudonymizer } from './pseudonyms';
import { Action, Rules } from './rules';

export interface DeidStats {
  kept: number;
  removed: number;
  replaced: number;
  remapped: number;
  shifted: number;
  cleaned: number;
}

export const emptyStats = (): DeidStats => ({ kept: 0, removed: 0, replaced: 0, remapped: 0, shifted: 0, cleaned: 0 });

export interface WalkEnv {
  pseudo: Pseudonymizer;
  patientPseudonym: string;
  /** Days to shift dates by for 'clean' dates; null means dates are never shifted. */
  dateOffset: number | null;
  /** Identifiers of this instance that must not survive (scrubbed from cleaned text). */
  identifiers: readonly Identifier[];
  stats: DeidStats;
}

/** Attributes the engine always writes itself at the top level (replacing any input copy). */
export const MARKING_TAGS: ReadonlySet<Tag> = new Set([
  T.PatientIdentityRemoved,
  T.DeidentificationMethod,
  T.DeidentificationMethodCodeSequence,
  T.LongitudinalTemporalInformationModified,
]);

/**
 * Rules for the items of a sequence, or null when its items are not kept. D keeps the same
 * structure with every value de-identified and all free text dummied, so the items stay valid
 * (Type 1 attributes keep a value) and no text of the input survives; C scrubs that text.
 */
function childRules(rules: Rules, tag: Tag, action: Action): Rules | null {
  if (action === 'keep' || action === 'uids-inside') return rules.itemRules(tag);
  if (action === 'clean' || action === 'dummy') return textInside(rules.itemRules(tag), action);
  return null;
}

const actionOf = (rules: Rules, el: DElement, creators: Map<number, string>, depth: number): Action =>
  rules.action({ tag: el.tag, vr: el.vr, creator: creatorOf(el.tag, creators), depth });

/**
 * Identifying values of the input that the output must not contain: every direct identifier
 * and every PN anywhere, unless the rules keep that very element. Elements under a removed
 * sequence are collected too (rules = null): their values must not reappear elsewhere.
 */
export function collectIdentifiers(elements: DElement[], src: ByteSource, rules: Rules | null, depth: number, out: Identifier[]): void {
  const creators = privateCreators(elements, src);
  for (const el of elements) {
    const action = rules ? actionOf(rules, el, creators, depth) : 'remove';
    if (el.items) {
      const child = rules && childRules(rules, el.tag, action);
      for (const item of el.items) collectIdentifiers(item.elements, src, child, depth + 1, out);
      continue;
    }
    const source = IDENTIFYING_TAGS.get(el.tag) ?? (el.vr === 'PN' ? 'PersonName' : undefined);
    if (source === undefined || action === 'keep' || el.length === UNDEFINED_LENGTH || el.length > 4096) continue;
    out.push(...identifiersOf(el.tag, el.vr, valueBytes(src, el), source));
  }
}

/**
 * Applies the rules to one dataset level. Returns output nodes in input order and whether
 * anything changed (an unchanged item or sequence is then copied byte for byte).
 */
export function walk(elements: DElement[], src: ByteSource, syntax: Syntax, rules: Rules, depth: number, env: WalkEnv): { nodes: OutNode[]; changed: boolean } {
  const creators = privateCreators(elements, src);
  const actions = elements.map((el) => (isPrivateCreator(el.tag) ? 'remove' : actionOf(rules, el, creators, depth)));
  // A private creator stays exactly when something in its block stays.
  const keptBlocks = new Set<number>();
  elements.forEach((el, i) => {
    const block = blockOf(el.tag);
    if (block !== null && !isPrivateCreator(el.tag) && actions[i] !== 'remove') keptBlocks.add(block);
  });

  const nodes: OutNode[] = [];
  let changed = false;
  elements.forEach((el, i) => {
    let action = actions[i];
    // Group lengths would be wrong after any change; command (0000) and meta (0002) elements
    // never belong in a stored dataset; the marking attributes are written anew.
    const group = el.tag >>> 16;
    if (isGroupLength(el.tag) || group === 0x0000 || (depth === 0 && (group === 0x0002 || MARKING_TAGS.has(el.tag)))) action = 'remove';
    else if (isPrivateCreator(el.tag)) action = keptBlocks.has(blockOf(el.tag)!) ? 'keep' : 'remove';
    const node = apply(el, action, src, syntax, rules, depth, env);
    if (node === null) {
      env.stats.removed++;
      changed = true;
      return;
    }
    if (node.kind !== 'copy') changed = true;
    else env.stats.kept++;
    nodes.push(node);
  });
  return { nodes, changed };
}

function apply(el: DElement, action: Action, src: ByteSource, syntax: Syntax, rules: Rules, depth: number, env: WalkEnv): OutNode | null {
  const copy: OutNode = { kind: 'copy', tag: el.tag, src, start: el.start, end: el.end };
  if (action === 'remove') return null;
  if (el.items) {
    const inner = childRules(rules, el.tag, action);
    if (inner) return recurse(el, src, inner, depth, env) ?? copy;
    env.stats.replaced++;
    // Z: an empty sequence.
    return { kind: 'sequence', tag: el.tag, headerVr: 'SQ', undefinedLength: false, itemSyntax: syntax, items: [] };
  }
  if (action === 'keep') return copy;
  if (el.length === UNDEFINED_LENGTH) {
    // Encapsulated data is either kept whole or removed; anything else would rewrite pixels.
    return action === 'empty' ? value(el, Buffer.alloc(0), env, 'replaced') : null;
  }
  if (typeof action === 'object') return value(el, encodeString(action.replace, el.vr), env, 'replaced');
  switch (action) {
    case 'empty':
      return value(el, Buffer.alloc(0), env, 'replaced');
    case 'patient-id':
    case 'patient-name':
      return value(el, encodeString(env.patientPseudonym, el.vr), env, 'replaced');
    case 'uid':
    case 'uids-inside':
      return el.vr === 'UI' ? remapUids(el, src, env) : value(el, Buffer.alloc(0), env, 'replaced');
    case 'dummy': {
      if (el.vr === 'UI') return remapUids(el, src, env);
      const text = dummyString(el.vr);
      return value(el, text === undefined ? dummyBinary(el.vr) : encodeString(text, el.vr), env, 'replaced');
    }
    case 'clean':
      return clean(el, src, env) ?? copy;
  }
}

const FREE_TEXT_VRS: ReadonlySet<string> = new Set(['LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT']);

/**
 * Rules for the items of a dummied (D) or cleaned (C) sequence: what the table would keep
 * as-is, free text included (e.g. an SR TextValue, which Table E.1-1 does not list), is
 * dummied or scrubbed instead. Coded terms, numbers and structure stay.
 */
function textInside(rules: Rules, mode: 'dummy' | 'clean'): Rules {
  const wrapped: Rules = {
    action(el) {
      const a = rules.action(el);
      return a === 'keep' && FREE_TEXT_VRS.has(el.vr) && !CODE_PARTS.has(el.tag) ? mode : a;
    },
    itemRules: (tag) => textInside(rules.itemRules(tag), mode),
    required: () => [],
  };
  return wrapped;
}

/** Code value and scheme of a coded term: vocabulary, not text about the patient. */
const CODE_PARTS: ReadonlySet<Tag> = new Set([0x00080100, 0x00080102, 0x00080103, 0x00080105, 0x00080119, 0x00080120]);

function value(el: DElement, bytes: Buffer, env: WalkEnv, stat: keyof DeidStats): OutNode {
  env.stats[stat]++;
  return { kind: 'value', tag: el.tag, vr: el.vr, value: bytes };
}

function remapUids(el: DElement, src: ByteSource, env: WalkEnv): OutNode {
  const text = valueBytes(src, el).toString('latin1').replace(/[\0 ]+$/, '');
  const mapped = text.split('\\').map((u) => (u.trim() === '' ? '' : env.pseudo.uid(u.trim()))).join('\\');
  return value(el, encodeString(mapped, 'UI'), env, 'remapped');
}

/** C: dates shift, free text is scrubbed, codes and numbers stay. Null = unchanged. */
function clean(el: DElement, src: ByteSource, env: WalkEnv): OutNode | null {
  if (el.vr === 'UI') return null;
  // Not text (OB, or UN: a tag unknown to the dictionary in implicit VR): it cannot be cleaned, so it is emptied, never kept.
  if (!STRING_VRS.has(el.vr)) return value(el, Buffer.alloc(0), env, 'replaced');
  const raw = valueBytes(src, el);
  if (el.vr === 'DA' || el.vr === 'DT') {
    if (env.dateOffset === null) return null;
    const text = raw.toString('latin1').replace(/[\0 ]+$/, '');
    const shifted = el.vr === 'DA' ? shiftDA(text, env.dateOffset) : shiftDT(text, env.dateOffset);
    return value(el, encodeString(shifted, el.vr), env, 'shifted');
  }
  if (el.vr === 'TM' || el.vr === 'AS' || el.vr === 'DS' || el.vr === 'IS') return null;
  const scrubbed = scrubText(raw, env.identifiers);
  if (scrubbed.equals(raw)) return null;
  return value(el, scrubbed, env, 'cleaned');
}

function recurse(el: DElement, src: ByteSource, rules: Rules, depth: number, env: WalkEnv): OutNode | null {
  let anyChanged = false;
  const items: OutItem[] = el.items!.map((item) => {
    const r = walk(item.elements, src, el.itemSyntax!, rules, depth + 1, env);
    if (!r.changed) return { kind: 'copy', src, start: item.start, end: item.end };
    anyChanged = true;
    return { kind: 'item', undefinedLength: item.length === UNDEFINED_LENGTH, nodes: r.nodes };
  });
  if (!anyChanged) return null;
  // A sequence hidden in UN keeps its UN header, so its items stay implicit VR LE.
  return { kind: 'sequence', tag: el.tag, headerVr: el.fileVr === 'UN' ? 'UN' : 'SQ', undefinedLength: el.length === UNDEFINED_LENGTH, itemSyntax: el.itemSyntax!, items };
}

