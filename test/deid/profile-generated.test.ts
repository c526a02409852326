// The generated PS3.15 tables are committed; these tests prove they are fresh and plausible.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findRepoRoot, renderAll, renderBasicProfile } from '../../scripts/generate-profile';
import { BASIC_PROFILE } from '../../src/deid/profiles/basic-profile.generated';
import { SAFE_PRIVATE } from '../../src/deid/profiles/safe-private.generated';
import { METHOD_CODES, OPTION_NAMES } from '../../src/deid/profiles/types';

// Compiled tests run from dist/test/deid, so find the repo root rather than using a fixed '../..'.
const root = findRepoRoot(__dirname);
const standardDir = path.join(root, 'data/standard');

function countBy<T>(items: readonly T[], key: (t: T) => string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) {
    const k = key(it);
    if (k !== undefined) out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

test('committed generated files equal a fresh render of data/standard', () => {
  for (const [rel, fresh] of renderAll(root)) {
    const committed = fs.readFileSync(path.join(root, rel), 'utf8');
    assert.ok(committed === fresh, `${rel} is stale: run npm run generate:profile`);
  }
});

test('../shared/standard JSON equals data/standard byte for byte', (t) => {
  const shared = path.join(root, '..', 'shared', 'standard');
  if (!fs.existsSync(shared)) {
    t.skip(`${shared} not present`);
    return;
  }
  const json = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(json(shared), json(standardDir), 'same set of JSON files');
  for (const f of json(standardDir)) {
    const same = fs.readFileSync(path.join(shared, f)).equals(fs.readFileSync(path.join(standardDir, f)));
    assert.ok(same, `${f} differs between data/standard and ../shared/standard`);
  }
});

test('Table E.1-1 matches the counts in data/standard/README.md', () => {
  assert.equal(BASIC_PROFILE.length, 657);
  assert.deepEqual(countBy(BASIC_PROFILE, (r) => r.basic), {
    X: 417, D: 93, U: 55, Z: 42, 'X/D': 23, 'X/Z': 11, 'X/Z/D': 8, 'Z/D': 6, 'X/Z/U*': 2,
  });
  const filled = (o: (typeof OPTION_NAMES)[number]) => countBy(BASIC_PROFILE, (r) => r.options[o]);
  assert.deepEqual(Object.fromEntries(OPTION_NAMES.map((o) => [o, filled(o)])), {
    retainSafePrivate: { C: 1 },
    retainUIDs: { K: 60 },
    retainDeviceIdentity: { K: 48, C: 11 },
    retainInstitutionIdentity: { K: 10 },
    retainPatientCharacteristics: { K: 14, C: 5 },
    retainLongFullDates: { K: 169 },
    retainLongModifiedDates: { C: 169 },
    cleanDescriptors: { C: 141 },
    cleanStructuredContent: { C: 4 },
    cleanGraphics: { C: 4 },
  });
  assert.equal(BASIC_PROFILE.filter((r) => r.retired).length, 102);
  // The two longitudinal options are alternatives on the same date/time rows.
  assert.ok(BASIC_PROFILE.every((r) => (r.options.retainLongFullDates === undefined) === (r.options.retainLongModifiedDates === undefined)));
});

test('spot checks on well-known rows', () => {
  const byTag = new Map(BASIC_PROFILE.map((r) => [r.tag, r]));
  assert.deepEqual(byTag.get('(0010,0010)'), {
    tag: '(0010,0010)', keyword: 'PatientName', basic: 'Z', options: {}, retired: false, name: "Patient's Name",
  });
  assert.equal(byTag.get('(0020,000D)')?.keyword, 'StudyInstanceUID');
  assert.equal(byTag.get('(0020,000D)')?.basic, 'U');
  assert.deepEqual(byTag.get('(gggg,eeee) where gggg is odd')?.options, { retainSafePrivate: 'C' });
  // Eleven distinct CID 7050 codes for the basic profile and the ten options.
  assert.equal(new Set(Object.values(METHOD_CODES).map((c) => c.value)).size, 11);
});

test('Table E.3.10-1 safe private list', () => {
  assert.equal(SAFE_PRIVATE.length, 479);
  const speed = SAFE_PRIVATE.filter((r) => r.group === 0x0019 && r.creator === 'GEMS_ACQU_01' && r.elementByte === 0x23);
  assert.equal(speed.length, 1);
  assert.equal(speed[0]!.meaning, 'Table Speed [mm/rotation]');
  // (2001,xx01) appears under several Philips creators: keys must include the creator.
  assert.ok(SAFE_PRIVATE.filter((r) => r.group === 0x2001 && r.elementByte === 0x01).length >= 4);
});

test('renderBasicProfile rejects unexpected rows, naming the row', () => {
  const rows = JSON.parse(fs.readFileSync(path.join(standardDir, 'ps3.15-e1-1.json'), 'utf8')) as Record<string, unknown>[];
  const bad = rows.map((r) => (r['tag'] === '(0010,0010)' ? { ...r, basic: 'Q' } : r));
  assert.throws(() => renderBasicProfile(bad), /\(0010,0010\).*unknown basic code "Q"/);
  const badOption = rows.map((r) => (r['tag'] === '(0010,0010)' ? { ...r, retainUIDs: 'X' } : r));
  assert.throws(() => renderBasicProfile(badOption), /\(0010,0010\).*retainUIDs/);
});
