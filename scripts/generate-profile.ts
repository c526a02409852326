// Generates src/deid/profiles/{basic-profile,safe-private}.generated.ts from the PS3.15 tables
// in data/standard/ (see data/standard/README.md). The render functions are pure so the test
// can prove the committed files equal a fresh generation.
//
// Run: npm run generate:profile   (compiles, then runs dist/scripts/generate-profile.js)

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ACTION_CODES, OPTION_NAMES, type OptionName } from '../src/deid/profiles/types';

export const EDITION = '2026d';

const E11_FILE = 'ps3.15-e1-1.json';
const SAFE_PRIVATE_FILE = 'ps3.15-e3-10-safe-private.json';
const BASIC_OUT = 'src/deid/profiles/basic-profile.generated.ts';
const SAFE_PRIVATE_OUT = 'src/deid/profiles/safe-private.generated.ts';

// JSON keys equal the option names, except the safe private column.
const jsonKey = (o: OptionName): string => (o === 'retainSafePrivate' ? 'safePrivate' : o);

const E11_KEYS = ['tag', 'keyword', 'name', 'retired', 'inStdCompIOD', 'basic', ...OPTION_NAMES.map(jsonKey)];
const SAFE_PRIVATE_KEYS = ['tag', 'privateCreator', 'vr', 'vm', 'meaning'];

// A plain tag "(0010,0010)", a repeating group "(60xx,3000)" / "(50xx,xxxx)", or the private row.
const TAG_RE = /^\((?:[0-9A-F]{4}|[0-9A-F]{2}xx),(?:[0-9A-F]{4}|xxxx)\)$/;
const PRIVATE_ROW_TAG = '(gggg,eeee) where gggg is odd';
const SAFE_TAG_RE = /^\(([0-9A-Fa-f]{4}),xx([0-9A-Fa-f]{2})\)$/;

function header(table: string, source: string): string {
  return [
    `// GENERATED FILE - DO NOT EDIT.`,
    `// DICOM PS3.15 edition ${EDITION}, ${table}, from data/standard/${source}.`,
    `// Regenerate with \`npm run generate:profile\` (scripts/generate-profile.ts).`,
  ].join('\n');
}

/**
 * TS string literal. Single quotes, or double quotes when the text holds an apostrophe and no
 * double quote, so "Patient's Name" stays greppable. Non-printable/non-ASCII chars are \u-escaped.
 */
function str(s: string | null): string {
  if (s === null) return 'null';
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s.replace(/[\\'"]/g, (c) => (c === q || c === '\\' ? '\\' + c : c))
    .replace(/[^\x20-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  return q + body + q;
}

const hex = (n: number, digits: number): string => '0x' + n.toString(16).toUpperCase().padStart(digits, '0');

/** "ps3.15-e1-1.json row 12 (0008,0050) Accession Number": names the row in error messages. */
function rowLabel(file: string, i: number, row: unknown): string {
  const r = (typeof row === 'object' && row !== null ? row : {}) as Record<string, unknown>;
  const label = [r['tag'], r['name'] ?? r['privateCreator']].filter((v) => typeof v === 'string').join(' ');
  return `${file} row ${i} ${label || JSON.stringify(row)}`;
}

/** Checks the row is an object with exactly `keys`; returns it typed loosely. */
function asRecord(row: unknown, keys: readonly string[], where: () => string): Record<string, unknown> {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new Error(`${where()}: not an object`);
  const rec = row as Record<string, unknown>;
  for (const k of Object.keys(rec)) if (!keys.includes(k)) throw new Error(`${where()}: unexpected field "${k}"`);
  for (const k of keys) if (!(k in rec)) throw new Error(`${where()}: missing field "${k}"`);
  return rec;
}

function text(rec: Record<string, unknown>, key: string, nullable: boolean, where: () => string): string | null {
  const v = rec[key];
  if (v === null && nullable) return null;
  // Blank cells must be null, not "" or padded text, so lookups can trust the values.
  if (typeof v !== 'string' || v === '' || v !== v.trim()) throw new Error(`${where()}: bad ${key} ${JSON.stringify(v)}`);
  return v;
}

function bool(rec: Record<string, unknown>, key: string, where: () => string): boolean {
  if (typeof rec[key] !== 'boolean') throw new Error(`${where()}: bad ${key} ${JSON.stringify(rec[key])}`);
  return rec[key] as boolean;
}

function checkArray(rows: unknown[], what: string): void {
  if (!Array.isArray(rows) || rows.length === 0) throw new Error(`${what}: expected a non-empty array of rows`);
}

/** Table E.1-1 rows (JSON) -> basic-profile.generated.ts source. */
export function renderBasicProfile(rows: unknown[]): string {
  checkArray(rows, E11_FILE);
  const seen = new Set<string>();
  const lines = rows.map((row, i) => {
    const where = () => rowLabel(E11_FILE, i, row);
    const rec = asRecord(row, E11_KEYS, where);
    const tag = text(rec, 'tag', false, where)!;
    if (!TAG_RE.test(tag) && tag !== PRIVATE_ROW_TAG) throw new Error(`${where()}: unrecognised tag "${tag}"`);
    if (seen.has(tag)) throw new Error(`${where()}: duplicate tag ${tag}`);
    seen.add(tag);
    const keyword = text(rec, 'keyword', true, where);
    if (keyword !== null && !/^[A-Za-z][A-Za-z0-9]*$/.test(keyword)) throw new Error(`${where()}: bad keyword`);
    const name = text(rec, 'name', false, where)!;
    const retired = bool(rec, 'retired', where);
    bool(rec, 'inStdCompIOD', where); // descriptive only; validated but not carried over
    const basic = rec['basic'];
    if (!(ACTION_CODES as readonly unknown[]).includes(basic)) {
      throw new Error(`${where()}: unknown basic code ${JSON.stringify(basic)}`);
    }
    const opts: string[] = [];
    for (const o of OPTION_NAMES) {
      const v = rec[jsonKey(o)];
      if (v === null) continue;
      if (v !== 'K' && v !== 'C') throw new Error(`${where()}: option ${jsonKey(o)} has code ${JSON.stringify(v)}, expected K, C or null`);
      opts.push(`${o}: '${v}'`);
    }
    const options = opts.length ? `{ ${opts.join(', ')} }` : '{}';
    // tag, keyword, code first so each line reads "tag name code".
    return `  { tag: ${str(tag)}, keyword: ${str(keyword)}, basic: '${basic as string}', options: ${options}, retired: ${retired}, name: ${str(name)} },`;
  });
  return [
    header('Table E.1-1 "Application Level Confidentiality Profile Attributes"', E11_FILE),
    `// One line per table row, in the standard's order.`,
    ``,
    `import type { ProfileRow } from './types';`,
    ``,
    `export const BASIC_PROFILE: readonly ProfileRow[] = [`,
    ...lines,
    `];`,
    ``,
  ].join('\n');
}

/** Table E.3.10-1 rows (JSON) -> safe-private.generated.ts source. */
export function renderSafePrivate(rows: unknown[]): string {
  checkArray(rows, SAFE_PRIVATE_FILE);
  const seen = new Set<string>();
  const lines = rows.map((row, i) => {
    const where = () => rowLabel(SAFE_PRIVATE_FILE, i, row);
    const rec = asRecord(row, SAFE_PRIVATE_KEYS, where);
    const tag = text(rec, 'tag', false, where)!;
    const m = SAFE_TAG_RE.exec(tag); // the standard mixes hex case: accept both, emit upper case
    if (!m) throw new Error(`${where()}: tag is not of the form (gggg,xxee)`);
    const group = parseInt(m[1]!, 16);
    const elementByte = parseInt(m[2]!, 16);
    // Private groups are odd, excluding 0001-0007 and FFFF (PS3.5 7.8.1).
    if (group % 2 === 0 || group <= 0x0007 || group === 0xffff) throw new Error(`${where()}: group is not a private group`);
    const creator = text(rec, 'privateCreator', false, where)!;
    if (creator.length > 64 || /[\\\x00-\x1f]/.test(creator)) throw new Error(`${where()}: creator is not a valid LO value`);
    const vr = text(rec, 'vr', true, where);
    if (vr !== null && !/^[A-Z]{2}(\/[A-Z]{2})*$/.test(vr)) throw new Error(`${where()}: bad vr "${vr}"`);
    const vm = text(rec, 'vm', true, where);
    if (vm !== null && !/^\d+(-(\d+|n))?$/.test(vm)) throw new Error(`${where()}: bad vm "${vm}"`);
    const meaning = text(rec, 'meaning', true, where);
    // Lookups key on (group, creator, ee); that triple must be unique.
    const key = `${group}|${creator}|${elementByte}`;
    if (seen.has(key)) throw new Error(`${where()}: duplicate (group, creator, element)`);
    seen.add(key);
    return `  { group: ${hex(group, 4)}, creator: ${str(creator)}, elementByte: ${hex(elementByte, 2)}, vr: ${str(vr)}, vm: ${str(vm)}, meaning: ${str(meaning)} },`;
  });
  return [
    header('Table E.3.10-1 "Safe Private Attributes"', SAFE_PRIVATE_FILE),
    `// One line per table row, in the standard's order. Element (group, xx<elementByte>) lives in the`,
    `// block reserved by the Private Creator (group,00xx) whose value is \`creator\`.`,
    ``,
    `import type { SafePrivateRow } from './types';`,
    ``,
    `export const SAFE_PRIVATE: readonly SafePrivateRow[] = [`,
    ...lines,
    `];`,
    ``,
  ].join('\n');
}

const EDITION_OUT = 'src/deid/profiles/edition.generated.ts';

/** The edition the tables came from, for manifests and the audit (generated so it cannot drift). */
export function renderEdition(): string {
  return [`// GENERATED FILE - DO NOT EDIT. Regenerate with \`npm run generate:profile\` (scripts/generate-profile.ts).`, `export const EDITION = '${EDITION}';`, ``].join('\n');
}

/** Nearest ancestor of `from` holding package.json (works from scripts/ and dist/scripts/). */
export function findRepoRoot(from: string): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** Both generated files as [repo-relative path, source text], rendered from data/standard/. */
export function renderAll(root: string): Array<[string, string]> {
  const read = (f: string): unknown[] => JSON.parse(fs.readFileSync(path.join(root, 'data/standard', f), 'utf8'));
  return [
    [BASIC_OUT, renderBasicProfile(read(E11_FILE))],
    [SAFE_PRIVATE_OUT, renderSafePrivate(read(SAFE_PRIVATE_FILE))],
    [EDITION_OUT, renderEdition()],
  ];
}

if (require.main === module) {
  const root = findRepoRoot(__dirname);
  for (const [rel, source] of renderAll(root)) {
    fs.writeFileSync(path.join(root, rel), source);
    console.log(`wrote ${rel} (${source.split('\n').length} lines)`);
  }
}
