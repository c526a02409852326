/**
 * End to end: the planted-PHI corpus (test/support/phi-corpus.ts) through the real CLI, for the
 * pixel-only profile and for the basic profile with and without options. The outputs are read
 * back with independent tools (pydicom, DCMTK dcmdump) and searched byte for byte for markers.
 *
 * What may survive is derived from PS3.15 Table E.1-1 itself (data/standard/ps3.15-e1-1.json),
 * never from the engine: see mayKeep().
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CorpusInstance, MARKER_UID_ROOT, PhiCorpus, PlantedMarker, generatePhiCorpus, searchableBytes } from '../support/phi-corpus';
import { dcmdump, python, repoRoot, run } from '../support/tools';

// ---------------------------------------------------------------- variants

interface Variant {
  name: string;
  profile: 'pixel-only' | 'basic';
  options: readonly string[];
}

const VARIANTS: Variant[] = [
  { name: 'pixel-only', profile: 'pixel-only', options: [] },
  { name: 'basic', profile: 'basic', options: [] },
  { name: 'basic+retainLongModifiedDates', profile: 'basic', options: ['retainLongModifiedDates'] },
  { name: 'basic+retainLongModifiedDates+cleanDescriptors', profile: 'basic', options: ['retainLongModifiedDates', 'cleanDescriptors'] },
];

/** The CLI's default --date-shift range. */
const DATE_SHIFT = { min: -3650, max: -365 };
/** The only dummy date the engine may write for a D-coded date (any other date must be a shifted original). */
const DUMMY_DATE = '19000101';

const shiftsDates = (v: Variant): boolean => v.options.includes('retainLongModifiedDates');
const isDateVr = (vr: string): boolean => vr === 'DA' || vr === 'DT';

// ---------------------------------------------------------------- Table E.1-1 (the specification)

interface E11Row { tag: string; keyword: string | null; basic: string; [option: string]: unknown }

const TABLE: E11Row[] = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'data/standard/ps3.15-e1-1.json'), 'utf8'));
const ROW_BY_TAG = new Map(TABLE.map((r) => [r.tag.toUpperCase(), r]));

/** "(0040,0275)[0].(0040,0440)[0].(0040,A123)" -> ["(0040,0275)", "(0040,0440)", "(0040,A123)"] */
function pathTags(p: string): string[] {
  return p.split('.').map((part) => part.replace(/\[\d+\]$/, '').toUpperCase());
}

const groupOf = (tag: string): number => parseInt(tag.slice(1, 5), 16);
const isPrivate = (tag: string): boolean => (groupOf(tag) & 1) === 1;

/** The Table E.1-1 row that governs a standard tag (repeating-group rows included), if any. */
function rowFor(tag: string): E11Row | undefined {
  const g = groupOf(tag);
  const e = tag.slice(6, 10);
  if ((g & 0xff00) === 0x5000 && g % 2 === 0) return ROW_BY_TAG.get('(50XX,XXXX)');
  if ((g & 0xff00) === 0x6000 && g % 2 === 0 && (e === '3000' || e === '4000')) return ROW_BY_TAG.get(`(60XX,${e})`);
  return ROW_BY_TAG.get(tag);
}

/** Action code of a row with options in effect (an option's cell replaces the basic code; C beats K). */
function codeFor(row: E11Row, options: readonly string[]): string {
  const cells = options.map((o) => row[o]).filter((c): c is string => typeof c === 'string');
  if (cells.length === 0) return row.basic;
  return cells.includes('C') ? 'C' : cells[0];
}

/**
 * Kinds of planting that no variant here may keep, whatever the table says about their tag:
 * private data (no retainSafePrivate here), the File Meta group (rewritten by any writer; it
 * holds the sender's AE title and private information), UIDs of cross-references (must be
 * remapped), and the non-ASCII parts of names (PatientName and PatientMotherBirthName rows).
 */
const NEVER_KEPT = new Set<PlantedMarker['kind']>(['private', 'meta', 'cross-reference', 'charset']);

/** Are all sequences around a planting kept (standard, and K, C or X/Z/U* if the table lists them)? */
function enclosingKept(p: PlantedMarker, v: Variant): boolean {
  return pathTags(p.path).slice(0, -1).every((t) => {
    const row = rowFor(t);
    return !isPrivate(t) && (!row || ['K', 'C', 'X/Z/U*'].includes(codeFor(row, v.options)));
  });
}

/**
 * May this planted value appear verbatim in an output of this variant? Only when the profile
 * keeps it: pixel-only keeps nothing planted. The basic profile keeps attributes that Table
 * E.1-1 does not list (e.g. CodeMeaning, OverlayDescription) when every enclosing sequence is
 * kept, and listed ones only with code K, or C on a time (TM): the modified-dates option moves
 * dates by whole days, which leaves times of day as they were. C on anything else (text,
 * dates, binary) means "cleaned", never "kept verbatim".
 */
function mayKeep(p: PlantedMarker, v: Variant): boolean {
  if (v.profile === 'pixel-only' || NEVER_KEPT.has(p.kind) || !enclosingKept(p, v)) return false;
  const leaf = pathTags(p.path).pop()!;
  const row = rowFor(leaf);
  if (isPrivate(leaf)) return false;
  if (!row) return true;
  const code = codeFor(row, v.options);
  return code === 'K' || (code === 'C' && p.vr === 'TM');
}

/** Is this planted date to be shifted (C-coded, in kept sequences) under the variant? */
function dateToShift(p: PlantedMarker, v: Variant): boolean {
  if (!shiftsDates(v) || !isDateVr(p.vr) || NEVER_KEPT.has(p.kind) || !enclosingKept(p, v)) return false;
  const row = rowFor(pathTags(p.path).pop()!);
  return row !== undefined && codeFor(row, v.options) === 'C';
}

// ---------------------------------------------------------------- reading outputs (pydicom)

interface DumpedElement { vr: string; value?: string; items?: number }
/** Tag path (same notation as PlantedMarker.path) -> element, meta group included. */
type Dump = Record<string, DumpedElement>;

const DUMP_PY = `
import sys, json, warnings
warnings.simplefilter('ignore')
import pydicom
from pydicom.multival import MultiValue
def tag(t): return '(%04X,%04X)' % (t.group, t.elem)
def text(e):
    v = e.value
    if v is None: return ''
    if isinstance(v, (bytes, bytearray)): return v.decode('latin1').rstrip('\\0 ')
    if isinstance(v, MultiValue): return '\\\\'.join(str(x) for x in v)
    return str(v)
def walk(ds, prefix, out):
    for e in ds:
        p = prefix + tag(e.tag)
        if e.VR == 'SQ':
            out[p] = {'vr': 'SQ', 'items': len(e.value)}
            for i, item in enumerate(e.value): walk(item, '%s[%d].' % (p, i), out)
        else:
            out[p] = {'vr': e.VR, 'value': text(e)}
res = {}
for f in sys.argv[1:]:
    ds = pydicom.dcmread(f)
    out = {}
    walk(ds.file_meta, '', out)
    walk(ds, '', out)
    res[f] = out
print(json.dumps(res))
`;

function dumpFiles(files: string[]): Record<string, Dump> {
  return JSON.parse(python(DUMP_PY, files));
}

const valueAt = (d: Dump, p: string): string | undefined => d[p]?.value;

// ---------------------------------------------------------------- running the CLI

interface Summary { files: number; outcomes: Record<string, number>; problems: { input: string; code?: string; reason?: string }[] }

interface Output {
  file: string;
  /** Path relative to the output folder. */
  rel: string;
  bytes: Buffer;
  dump: Dump;
}

interface RunResult {
  variant: Variant;
  outDir: string;
  summary: Summary;
  quarantined: string[];
  outputs: Output[];
  /** Output of each corpus instance, found by InstanceNumber (kept by both profiles), by corpus index. */
  byInstance: Map<number, Output>;
}

const CLI = path.join(repoRoot(), 'dist/src/cli/main.js');

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]))
    .sort();
}

function runVariant(v: Variant, inDir: string, work: string, secretFile: string): RunResult {
  const outDir = path.join(work, `out-${v.name}`);
  const summaryFile = path.join(work, `summary-${v.name}.json`);
  const args = [CLI, 'deidentify', inDir, outDir, '--profile', v.profile, ...v.options.flatMap((o) => ['--option', o]),
    '--secret-file', secretFile, '--jobs', '2', '--no-progress', '--summary-json', summaryFile];
  const r = run(process.execPath, args);
  assert.equal(r.status, 0, `CLI ${v.name} exited ${r.status}:\n${r.stderr}\n${r.stdout}`);
  const files = listFiles(outDir);
  const dumps = files.length ? dumpFiles(files) : {};
  const outputs = files.map((file) => ({ file, rel: path.relative(outDir, file), bytes: searchableBytes(fs.readFileSync(file)), dump: dumps[file] }));
  const byInstance = new Map<number, Output>();
  for (const o of outputs) {
    const n = Number(valueAt(o.dump, '(0020,0013)'));
    assert.ok(Number.isInteger(n) && !byInstance.has(n - 1), `${v.name}: ${o.rel} has InstanceNumber ${n}`);
    byInstance.set(n - 1, o);
  }
  return {
    variant: v, outDir, outputs, byInstance,
    summary: JSON.parse(fs.readFileSync(summaryFile, 'utf8')),
    quarantined: listFiles(`${outDir}.quarantine`),
  };
}

// ---------------------------------------------------------------- marker search

/**
 * Markers found in an output that must not be there. An output of corpus file F may hold a
 * marker only when every planting of that marker in F may be kept (markers of other files
 * never). `skip` leaves some markers to a structured check (shifted dates can equal other
 * date markers by chance).
 */
function forbiddenMarkers(o: Output, inst: CorpusInstance, byMarker: Map<string, PlantedMarker[]>, v: Variant, skip: (p: PlantedMarker) => boolean): string[] {
  const found: string[] = [];
  for (const [m, plantings] of byMarker) {
    if (plantings.some(skip)) continue;
    if (!o.bytes.includes(Buffer.from(m, 'latin1'))) continue;
    const here = plantings.filter((p) => p.file === inst.file);
    if (here.length > 0 && here.every((p) => mayKeep(p, v))) continue;
    const where = plantings.map((p) => `${p.file} ${p.path} ${p.keyword ?? '-'} [${p.kind}]`).join('; ');
    found.push(`${JSON.stringify(m)} planted at ${where}`);
  }
  return found;
}

function listing(list: string[], max = 25): string {
  return list.slice(0, max).join('\n  ') + (list.length > max ? `\n  ... and ${list.length - max} more` : '');
}

// ---------------------------------------------------------------- dates

const DAY_MS = 86_400_000;
function dayNumber(yyyymmdd: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})/.exec(yyyymmdd);
  assert.ok(m, `not a date: ${JSON.stringify(yyyymmdd)}`);
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3]);
  const d = new Date(t);
  assert.ok(d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3], `invalid date ${yyyymmdd}`);
  return t / DAY_MS;
}

/**
 * Offset of a date string in bytes where it starts a value or a number (not preceded by a digit
 * or a '.'), so that 8 digits inside a 2.25 UID do not count; -1 if none.
 */
function findDate(bytes: Buffer, date: string): number {
  const needle = Buffer.from(date, 'latin1');
  for (let i = bytes.indexOf(needle); i >= 0; i = bytes.indexOf(needle, i + 1)) {
    const before = i > 0 ? bytes[i - 1] : 0;
    if (!((before >= 0x30 && before <= 0x39) || before === 0x2e)) return i;
  }
  return -1;
}

/** Non-empty values of a DA/DT element; a DA range "A-B" gives both ends. */
function dateValues(value: string | undefined, vr: string): string[] {
  if (!value) return [];
  return value.split('\\').flatMap((v) => (vr === 'DA' ? v.split('-') : [v])).map((v) => v.trim()).filter(Boolean);
}

// ---------------------------------------------------------------- setup

let work: string;
let corpus: PhiCorpus;
/** Marker -> every place it was planted. */
const plantings = new Map<string, PlantedMarker[]>();
const results = new Map<string, RunResult>();

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-phi-'));
  const inDir = path.join(work, 'in');
  corpus = await generatePhiCorpus(inDir);
  for (const p of corpus.plantedTags) plantings.set(p.marker, [...(plantings.get(p.marker) ?? []), p]);
  const secretFile = path.join(work, 'secret');
  fs.writeFileSync(secretFile, 'phi-corpus-test-secret-5f0c2d9a8b7e6f41\n', { mode: 0o600 });
  for (const v of VARIANTS) results.set(v.name, runVariant(v, inDir, work, secretFile));
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const result = (v: Variant): RunResult => results.get(v.name)!;
const variant = (name: string): Variant => VARIANTS.find((v) => v.name === name)!;

// ---------------------------------------------------------------- the specification itself

test('Table E.1-1 exceptions are precise: basic keeps only unlisted overlay text, never a listed attribute', () => {
  const kept = new Set(corpus.plantedTags.filter((p) => mayKeep(p, variant('basic'))).map((p) => `${p.path} ${p.keyword}`));
  assert.deepEqual([...kept].sort(), ['(6000,0022) OverlayDescription', '(6000,1500) OverlayLabel']);
  for (const v of VARIANTS) {
    const listed = corpus.plantedTags.filter((p) => p.kind === 'E.1-1' && mayKeep(p, v));
    assert.ok(listed.every((p) => p.vr === 'TM' && shiftsDates(v)), `${v.name}: ${listed.map((p) => p.keyword).join(', ')}`);
  }
  assert.equal(corpus.plantedTags.filter((p) => mayKeep(p, variant('pixel-only'))).length, 0, 'pixel-only keeps nothing planted');
});

// ---------------------------------------------------------------- per variant

for (const v of VARIANTS) {
  test(`${v.name}: every corpus file is written, none quarantined or skipped`, () => {
    const r = result(v);
    const reasons = r.quarantined.filter((f) => f.endsWith('.json')).map((f) => fs.readFileSync(f, 'utf8'));
    assert.equal(r.summary.outcomes.quarantined, 0, `quarantined:\n${reasons.join('\n')}`);
    assert.deepEqual(r.quarantined, [], 'no quarantine folder content');
    assert.equal(r.summary.outcomes.skipped, 0, JSON.stringify(r.summary.problems));
    assert.equal(r.summary.outcomes.written, corpus.files.length);
    assert.equal(r.outputs.length, corpus.files.length);
    assert.deepEqual([...r.byInstance.keys()].sort(), corpus.instances.map((_, i) => i));
  });

  test(`${v.name}: no planted marker in any output byte, except what the profile keeps`, () => {
    const r = result(v);
    // Shifted dates are checked per attribute below: a shifted date may equal another date marker.
    const skip = (p: PlantedMarker) => shiftsDates(v) && isDateVr(p.vr);
    const leaks: string[] = [];
    for (const [i, o] of r.byInstance) {
      for (const f of forbiddenMarkers(o, corpus.instances[i], plantings, v, skip)) leaks.push(`output of ${corpus.instances[i].file}: ${f}`);
    }
    assert.equal(leaks.length, 0, `${leaks.length} markers leaked:\n  ${listing(leaks)}`);
  });

  test(`${v.name}: no original Study/Series/SOP/FrameOfReference UID (nor any corpus UID) in the outputs`, () => {
    const r = result(v);
    const root = Buffer.from(MARKER_UID_ROOT, 'latin1');
    for (const o of r.outputs) {
      for (const inst of corpus.instances) {
        for (const uid of [inst.studyInstanceUID, inst.seriesInstanceUID, inst.sopInstanceUID, inst.frameOfReferenceUID]) {
          assert.ok(!o.bytes.includes(Buffer.from(uid, 'latin1')), `${o.rel} holds ${uid} (of ${inst.file})`);
        }
      }
      assert.equal(o.bytes.indexOf(root), -1, `${o.rel} holds a UID under the corpus root ${MARKER_UID_ROOT}`);
    }
  });

  test(`${v.name}: new UIDs and pseudonyms are consistent across the corpus and name the output path`, () => {
    const r = result(v);
    const uidsOf = (i: number) => {
      const d = r.byInstance.get(i)!.dump;
      return {
        study: valueAt(d, '(0020,000D)')!, series: valueAt(d, '(0020,000E)')!, sop: valueAt(d, '(0008,0018)')!,
        frame: valueAt(d, '(0020,0052)'), meta: valueAt(d, '(0002,0003)'), patient: valueAt(d, '(0010,0020)')!,
      };
    };
    const consistent = (label: string, original: (c: CorpusInstance) => string, mapped: (i: number) => string | undefined) => {
      const map = new Map<string, Set<string | undefined>>();
      corpus.instances.forEach((c, i) => map.set(original(c), (map.get(original(c)) ?? new Set()).add(mapped(i))));
      for (const [orig, news] of map) assert.equal(news.size, 1, `${label} ${orig} became ${[...news].join(', ')}`);
      const allNew = [...map.values()].map((s) => [...s][0]);
      assert.equal(new Set(allNew).size, map.size, `${label}: different originals must get different new values`);
      for (const n of allNew) assert.ok(n && !map.has(n), `${label}: ${n} is missing or an original`);
    };
    consistent('StudyInstanceUID', (c) => c.studyInstanceUID, (i) => uidsOf(i).study);
    consistent('SeriesInstanceUID', (c) => c.seriesInstanceUID, (i) => uidsOf(i).series);
    consistent('SOPInstanceUID', (c) => c.sopInstanceUID, (i) => uidsOf(i).sop);
    consistent('FrameOfReferenceUID', (c) => c.frameOfReferenceUID, (i) => uidsOf(i).frame);
    consistent('PatientID', (c) => c.patient, (i) => uidsOf(i).patient);
    for (const [i, o] of r.byInstance) {
      const u = uidsOf(i);
      assert.equal(u.meta, u.sop, `${o.rel}: MediaStorageSOPInstanceUID`);
      assert.equal(o.rel, path.join(u.patient, u.study, u.series, `${u.sop}.dcm`));
    }
  });

  test(`${v.name}: dates`, () => {
    const r = result(v);
    const originalDates = new Set(corpus.plantedTags.filter((p) => isDateVr(p.vr)).map((p) => p.marker.slice(0, 8)));
    assert.ok(originalDates.size > 100);
    if (!shiftsDates(v)) {
      // No original date remains: not even the date part of a DateTime, anywhere.
      for (const o of r.outputs) {
        for (const d of originalDates) assert.equal(findDate(o.bytes, d), -1, `${o.rel} holds the original date ${d}`);
        for (const [p, e] of Object.entries(o.dump)) {
          if (!isDateVr(e.vr)) continue;
          for (const d of dateValues(e.value, e.vr)) assert.ok(!originalDates.has(d.slice(0, 8)), `${o.rel} ${p}: original date in ${d}`);
        }
      }
      return;
    }
    // Modified dates: every C-coded date is shifted by one offset per patient, across files.
    const offsets = new Map<string, Set<number>>();
    const problems: string[] = [];
    let shifted = 0;
    for (const [i, o] of r.byInstance) {
      const inst = corpus.instances[i];
      const name = `output of ${inst.file}`;
      for (const p of corpus.plantedTags.filter((q) => q.file === inst.file && isDateVr(q.vr))) {
        const out = dateValues(valueAt(o.dump, p.path), p.vr);
        if (!dateToShift(p, v)) {
          if (out.some((d) => d.slice(0, 8) === p.marker.slice(0, 8))) problems.push(`${name} ${p.path} ${p.keyword}: kept ${out} (not C-coded)`);
          continue;
        }
        for (const d of out) {
          if (!/^\d{8}/.test(d)) { problems.push(`${name} ${p.path} ${p.keyword}: ${JSON.stringify(d)} is not a date`); continue; }
          const days = dayNumber(d) - dayNumber(p.marker);
          if (days === 0) problems.push(`${name} ${p.path} ${p.keyword}: original date ${p.marker} kept`);
          if (p.vr === 'DT' && d.slice(8) !== p.marker.slice(8)) problems.push(`${name} ${p.path}: time part of ${p.marker} changed to ${d}`);
          offsets.set(inst.patient, (offsets.get(inst.patient) ?? new Set()).add(days));
          shifted++;
        }
      }
      for (const kw of ['(0008,0020)', '(0008,0021)', '(0008,002A)']) {
        if (!valueAt(o.dump, kw)) problems.push(`${name}: ${kw} is missing or empty (C keeps it, shifted)`);
      }
    }
    assert.equal(problems.length, 0, listing(problems));
    assert.deepEqual([...offsets.keys()].sort(), ['A', 'B']);
    for (const [patient, set] of offsets) {
      assert.equal(set.size, 1, `patient ${patient}: several offsets ${[...set].join(', ')}`);
      const [days] = set;
      assert.ok(days !== 0 && days >= DATE_SHIFT.min && days <= DATE_SHIFT.max, `patient ${patient}: offset ${days}`);
    }
    assert.ok(shifted > 200, `only ${shifted} shifted dates checked`);
    // Every date anywhere in an output is the dummy or an original date moved by its patient's offset.
    for (const [i, o] of r.byInstance) {
      const [offset] = offsets.get(corpus.instances[i].patient)!;
      for (const [p, e] of Object.entries(o.dump)) {
        if (!isDateVr(e.vr)) continue;
        for (const d of dateValues(e.value, e.vr)) {
          if (d.startsWith(DUMMY_DATE)) continue;
          const back = new Date((dayNumber(d) - offset) * DAY_MS).toISOString().slice(0, 10).replace(/-/g, '');
          assert.ok(originalDates.has(back), `${o.rel} ${p}: ${d} is not an original date shifted by ${offset} days`);
        }
      }
    }
  });

  test(`${v.name}: outputs pass dcmdump`, () => {
    for (const o of result(v).outputs) {
      const out = dcmdump(o.file);
      assert.match(out, /\(7fe0,0010\) O[BW] /, `${o.rel}: Pixel Data`);
      assert.match(out, /\(0012,0062\) CS \[YES\]/, `${o.rel}: PatientIdentityRemoved`);
    }
  });
}

test('basic: references point at the new SOPInstanceUID of the referenced corpus instance', () => {
  for (const v of VARIANTS.filter((x) => x.profile === 'basic')) {
    const r = result(v);
    let checked = 0;
    for (const [i, o] of r.byInstance) {
      const inst = corpus.instances[i];
      for (const seqTag of ['(0008,1140)', '(0008,2112)']) {
        const ref = `${seqTag}[0].(0008,1155)`;
        const planted = corpus.plantedTags.find((p) => p.file === inst.file && p.path === ref);
        assert.ok(planted, `corpus: ${inst.file} has no ${ref}`);
        const target = corpus.instances.findIndex((c) => c.sopInstanceUID === planted.marker);
        assert.ok(target >= 0 && target !== i);
        const expected = valueAt(r.byInstance.get(target)!.dump, '(0008,0018)');
        assert.equal(valueAt(o.dump, ref), expected, `${v.name} ${o.rel} ${ref} -> ${corpus.instances[target].file}`);
        assert.equal(valueAt(o.dump, `${seqTag}[0].(0008,1150)`), corpus.instances[target].sopClassUID);
        checked++;
      }
    }
    assert.equal(checked, 2 * corpus.files.length);
  }
});

test('outputs map back to corpus files by InstanceNumber: SOP class and transfer syntax agree', () => {
  // Guards the mapping every other test relies on (patient A is MR, B is CT; syntaxes vary).
  const TS: Record<string, string> = { explicitLE: '1.2.840.10008.1.2.1', implicitLE: '1.2.840.10008.1.2', explicitBE: '1.2.840.10008.1.2.2', deflatedLE: '1.2.840.10008.1.2.1.99' };
  for (const v of VARIANTS) {
    for (const [i, o] of result(v).byInstance) {
      assert.equal(valueAt(o.dump, '(0008,0016)'), corpus.instances[i].sopClassUID, `${v.name} ${o.rel}`);
      assert.equal(valueAt(o.dump, '(0002,0010)'), TS[corpus.instances[i].syntax], `${v.name} ${o.rel}`);
    }
  }
});
