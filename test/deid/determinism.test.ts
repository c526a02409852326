/**
 * Determinism of the keyed pseudonyms: the same secret gives byte-identical outputs (in-process,
 * through the CLI's worker pool, in another process), a different secret gives different UIDs
 * and pseudonyms, and the derived values have the documented shapes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BufferSource } from '../../src/dicom/byte-source';
import { DElement, stringValue } from '../../src/dicom/dataset';
import { IMPLEMENTATION_CLASS_UID } from '../../src/dicom/meta';
import { readInstance } from '../../src/dicom/part10';
import { PartsSource } from '../../src/dicom/parts-source';
import { DeidOutcome, DeidOutput, Engine } from '../../src/deid/deidentify';
import { Pseudonymizer } from '../../src/deid/pseudonyms';
import { DEFAULT_SETTINGS, DeidSettings } from '../../src/deid/settings';
import { PhiCorpus, generatePhiCorpus } from '../support/phi-corpus';
import { python, repoRoot, run } from '../support/tools';

// ---------------------------------------------------------------- helpers

const SECRET_A = 'determinism-secret-A-7d1f0c2b9e4a';
const SECRET_B = 'determinism-secret-B-7d1f0c2b9e4a';
/** Samples besides the corpus: CT, big endian MR, an SR without pixels, a secondary capture (quarantined). */
const SAMPLES = ['pydicom__CT_small.dcm', 'pydicom__MR_small_bigendian.dcm', 'pydicom__test-SR.dcm', 'pydicom__JPEG2000.dcm'];

const SETTINGS: Record<string, DeidSettings> = {
  'pixel-only': { ...DEFAULT_SETTINGS },
  basic: { ...DEFAULT_SETTINGS, profile: 'basic' },
  'basic+retainLongModifiedDates': { ...DEFAULT_SETTINGS, profile: 'basic', options: new Set(['retainLongModifiedDates']) },
};

const UID_2_25 = /^2\.25\.(0|[1-9][0-9]*)$/;
const STANDARD_UID = /^1\.2\.840\.10008\./;
const BASE32_16 = '[A-Z2-7]{16}';

function outputBytes(o: DeidOutput): Buffer {
  const body = new PartsSource(o.parts);
  return Buffer.concat([o.meta, body.slice(0, body.size)]);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A fresh engine (no caches shared with any other run) on one file. */
function deidentify(file: string, settings: DeidSettings, secret: string): DeidOutcome {
  return new Engine(settings, Buffer.from(secret, 'utf8')).process(readInstance(new BufferSource(fs.readFileSync(file))));
}

function forwarded(outcome: DeidOutcome): DeidOutput | null {
  return outcome.kind === 'forward' ? outcome.output : null;
}

/** Every UI value in a Part 10 file (meta and data set, sequences included), re-read from its bytes. */
function uidValues(bytes: Buffer): string[] {
  const inst = readInstance(new BufferSource(bytes));
  const out: string[] = [];
  const walk = (els: DElement[], src: typeof inst.dataset.src) => {
    for (const el of els) {
      if (el.items) for (const item of el.items) walk(item.elements, src);
      else if (el.vr === 'UI' && el.length > 0) out.push(...stringValue(src, el).split('\\').filter(Boolean));
    }
  };
  if (inst.meta) walk(inst.meta.elements, inst.meta.src);
  walk(inst.dataset.elements, inst.dataset.src);
  return out;
}

/** Top-level string value of a tag in an output file. */
function topValue(bytes: Buffer, tag: number): string | undefined {
  const inst = readInstance(new BufferSource(bytes));
  const el = inst.dataset.elements.find((e) => e.tag === tag);
  return el ? stringValue(inst.dataset.src, el) : undefined;
}

/** Relative path -> bytes of every file under dir. */
function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), fs.readFileSync(p));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

const CLI = path.join(repoRoot(), 'dist/src/cli/main.js');

function runCli(inDir: string, outDir: string, secretFile: string, args: string[]): void {
  const r = run(process.execPath, [CLI, 'deidentify', inDir, outDir, '--secret-file', secretFile, '--jobs', '2', '--no-progress', ...args]);
  assert.equal(r.status, 0, `CLI exited ${r.status}:\n${r.stderr}\n${r.stdout}`);
}

let work: string;
let inDir: string;
let corpus: PhiCorpus;
let inputs: string[];

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-determinism-'));
  inDir = path.join(work, 'in');
  corpus = await generatePhiCorpus(path.join(inDir, 'corpus'));
  for (const s of SAMPLES) fs.copyFileSync(path.join(repoRoot(), 'test/fixtures/samples', s), path.join(inDir, s));
  inputs = [...corpus.files, ...SAMPLES.map((s) => path.join(inDir, s))];
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------- tests

test('in-process: the same secret gives byte-identical outputs from fresh engines', () => {
  let compared = 0;
  for (const [name, settings] of Object.entries(SETTINGS)) {
    for (const file of inputs) {
      const a = deidentify(file, settings, SECRET_A);
      const b = deidentify(file, settings, SECRET_A);
      assert.equal(a.kind, b.kind, `${name} ${file}`);
      const [oa, ob] = [forwarded(a), forwarded(b)];
      if (!oa || !ob) continue;
      assert.ok(outputBytes(oa).equals(outputBytes(ob)), `${name} ${path.basename(file)}: outputs differ`);
      assert.deepEqual([oa.patientPseudonym, oa.studyUid, oa.seriesUid, oa.sopInstanceUid], [ob.patientPseudonym, ob.studyUid, ob.seriesUid, ob.sopInstanceUid]);
      compared++;
    }
  }
  assert.ok(compared >= 3 * 10, `only ${compared} outputs compared`);
});

test('in-process: one engine gives the same bytes when it sees an instance again (caches do not change results)', () => {
  const engine = new Engine(SETTINGS.basic, Buffer.from(SECRET_A, 'utf8'));
  const first = inputs.map((f) => forwarded(engine.process(readInstance(new BufferSource(fs.readFileSync(f))))));
  const second = [...inputs].reverse().map((f) => forwarded(engine.process(readInstance(new BufferSource(fs.readFileSync(f)))))).reverse();
  first.forEach((o, i) => {
    assert.equal(!!o, !!second[i]);
    if (o) assert.ok(outputBytes(o).equals(outputBytes(second[i]!)), path.basename(inputs[i]));
  });
});

test('CLI twice into two folders: same files, same bytes, and the same bytes as the engine in-process', () => {
  const secretFile = path.join(work, 'secret-a');
  fs.writeFileSync(secretFile, `${SECRET_A}\n`, { mode: 0o600 });
  const [out1, out2] = [path.join(work, 'cli-1'), path.join(work, 'cli-2')];
  runCli(inDir, out1, secretFile, ['--profile', 'basic']);
  runCli(inDir, out2, secretFile, ['--profile', 'basic']);
  for (const [a, b] of [[out1, out2], [`${out1}.quarantine`, `${out2}.quarantine`]]) {
    const [ta, tb] = [tree(a), tree(b)];
    assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort(), `${path.basename(a)} vs ${path.basename(b)}: file lists`);
    for (const [rel, bytes] of ta) assert.ok(bytes.equals(tb.get(rel)!), `${rel} differs between the two runs`);
  }
  const written = tree(out1);
  assert.ok(written.size >= corpus.files.length + 3, `only ${written.size} files written`);
  assert.ok(tree(`${out1}.quarantine`).size >= 2, 'the secondary capture sample is quarantined (a .dcm and a .json)');
  // The worker pool and the file writer add nothing: each file is exactly the engine's output.
  for (const file of inputs) {
    const o = forwarded(deidentify(file, SETTINGS.basic, SECRET_A));
    if (!o) continue;
    const rel = path.join(o.patientPseudonym, o.studyUid, o.seriesUid, `${o.sopInstanceUid}.dcm`);
    assert.ok(written.get(rel)?.equals(outputBytes(o)), `${path.basename(file)}: CLI output ${rel} missing or different`);
  }
});

test('a different secret gives different UIDs, pseudonyms and bytes', () => {
  let compared = 0;
  for (const [name, settings] of Object.entries(SETTINGS)) {
    for (const file of inputs) {
      const a = forwarded(deidentify(file, settings, SECRET_A));
      const b = forwarded(deidentify(file, settings, SECRET_B));
      assert.equal(!!a, !!b, `${name} ${file}`);
      if (!a || !b) continue;
      const label = `${name} ${path.basename(file)}`;
      assert.notEqual(a.patientPseudonym, b.patientPseudonym, `${label}: pseudonym`);
      assert.notEqual(a.studyUid, b.studyUid, `${label}: StudyInstanceUID`);
      assert.notEqual(a.seriesUid, b.seriesUid, `${label}: SeriesInstanceUID`);
      assert.notEqual(a.sopInstanceUid, b.sopInstanceUid, `${label}: SOPInstanceUID`);
      const [ba, bb] = [outputBytes(a), outputBytes(b)];
      assert.ok(!ba.equals(bb), `${label}: same bytes`);
      // No derived UID of one secret appears in the output of the other.
      const derivedA = new Set(uidValues(ba).filter((u) => UID_2_25.test(u) && u !== IMPLEMENTATION_CLASS_UID));
      const shared = uidValues(bb).filter((u) => derivedA.has(u));
      assert.deepEqual(shared, [], `${label}: UIDs shared across secrets`);
      compared++;
    }
  }
  assert.ok(compared >= 30);
});

test('UIDs look like 2.25.<decimal of at most 128 bits>, at most 44 characters', () => {
  const check = (uid: string, where: string) => {
    assert.match(uid, UID_2_25, where);
    assert.ok(uid.length <= 44, `${where}: ${uid} is ${uid.length} characters`);
    assert.ok(BigInt(uid.slice(5)) < 1n << 128n, `${where}: ${uid} exceeds 128 bits`);
  };
  let checked = 0;
  for (const [name, settings] of Object.entries(SETTINGS)) {
    for (const file of inputs) {
      const o = forwarded(deidentify(file, settings, SECRET_A));
      if (!o) continue;
      const label = `${name} ${path.basename(file)}`;
      for (const [k, uid] of Object.entries({ study: o.studyUid, series: o.seriesUid, sop: o.sopInstanceUid })) check(uid, `${label} ${k}`);
      const bytes = outputBytes(o);
      assert.equal(topValue(bytes, 0x00080018), o.sopInstanceUid, `${label}: SOPInstanceUID in the data set`);
      assert.equal(topValue(bytes, 0x0020000d), o.studyUid, `${label}: StudyInstanceUID in the data set`);
      assert.equal(topValue(bytes, 0x0020000e), o.seriesUid, `${label}: SeriesInstanceUID in the data set`);
      // In corpus outputs every UID is new or standard: all its original UIDs are markers.
      if (corpus.files.includes(file)) {
        for (const uid of uidValues(bytes)) {
          if (STANDARD_UID.test(uid) || uid === IMPLEMENTATION_CLASS_UID) continue;
          check(uid, `${label} (data set)`);
          checked++;
        }
      }
    }
  }
  assert.ok(checked > 50, `only ${checked} data set UIDs checked`);
});

test('the pseudonym is the prefix + 16 base32 characters, in PatientID and PatientName, one per patient', () => {
  for (const prefix of ['ANON-', 'SITE7_']) {
    const settings: DeidSettings = { ...SETTINGS.basic, patientIdPrefix: prefix };
    const byPatient = new Map<string, Set<string>>();
    corpus.files.forEach((file, i) => {
      const o = forwarded(deidentify(file, settings, SECRET_A));
      assert.ok(o, file);
      assert.match(o.patientPseudonym, new RegExp(`^${prefix}${BASE32_16}$`));
      const bytes = outputBytes(o);
      assert.equal(topValue(bytes, 0x00100020), o.patientPseudonym, 'PatientID');
      assert.equal(topValue(bytes, 0x00100010), o.patientPseudonym, 'PatientName');
      const patient = corpus.instances[i].patient;
      byPatient.set(patient, (byPatient.get(patient) ?? new Set()).add(o.patientPseudonym));
    });
    assert.equal(byPatient.get('A')!.size, 1);
    assert.equal(byPatient.get('B')!.size, 1);
    assert.notDeepEqual(byPatient.get('A'), byPatient.get('B'));
  }
});

test('HMAC derivation is stable across processes: a child process derives the same values', () => {
  const dist = path.resolve(__dirname, '../..');
  const child = `
    const fs = require('fs'), crypto = require('crypto'), path = require('path');
    const [dist, secret, ...files] = process.argv.slice(1);
    const { Engine } = require(path.join(dist, 'src/deid/deidentify'));
    const { DEFAULT_SETTINGS } = require(path.join(dist, 'src/deid/settings'));
    const { BufferSource } = require(path.join(dist, 'src/dicom/byte-source'));
    const { readInstance } = require(path.join(dist, 'src/dicom/part10'));
    const { PartsSource } = require(path.join(dist, 'src/dicom/parts-source'));
    const engine = new Engine({ ...DEFAULT_SETTINGS, profile: 'basic' }, Buffer.from(secret, 'utf8'));
    const out = files.map((f) => {
      const r = engine.process(readInstance(new BufferSource(fs.readFileSync(f))));
      if (r.kind !== 'forward') return { kind: r.kind };
      const o = r.output, body = new PartsSource(o.parts);
      const bytes = Buffer.concat([o.meta, body.slice(0, body.size)]);
      return { kind: r.kind, pseudonym: o.patientPseudonym, study: o.studyUid, series: o.seriesUid, sop: o.sopInstanceUid,
        sha256: crypto.createHash('sha256').update(bytes).digest('hex') };
    });
    process.stdout.write(JSON.stringify(out));`;
  const r = run(process.execPath, ['-e', child, dist, SECRET_A, ...inputs], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const theirs = JSON.parse(r.stdout);
  const ours = inputs.map((f) => {
    const res = deidentify(f, SETTINGS.basic, SECRET_A);
    const o = forwarded(res);
    return o ? { kind: res.kind, pseudonym: o.patientPseudonym, study: o.studyUid, series: o.seriesUid, sop: o.sopInstanceUid, sha256: sha256(outputBytes(o)) }
      : { kind: res.kind };
  });
  assert.deepEqual(theirs, ours);
  assert.ok(ours.filter((o) => o.kind === 'forward').length >= 10);
});

test('HMAC derivation is the documented one: known answers, and Python hmac agrees', () => {
  // Known answers: if these change, every pseudonym issued so far changes and longitudinal
  // linkage with earlier exports breaks.
  const golden = new Pseudonymizer(Buffer.from('golden-secret-do-not-change-0001', 'utf8'));
  assert.equal(golden.uid('1.2.840.113619.2.1.1.1'), '2.25.137314880857309048911366079955427260873');
  assert.equal(golden.patient('PAT-0001', 'ANON-'), 'ANON-W7EWUMJ6ZMUHU573');

  // The recipe, computed by an independent implementation: HMAC-SHA256(secret, domain NUL value),
  // UID = 2.25.<first 16 bytes as an unsigned integer>, pseudonym = prefix + base32(first 10 bytes).
  const originals = corpus.instances.map((i) => i.studyInstanceUID).concat(corpus.instances.map((i) => i.sopInstanceUID));
  const expected = JSON.parse(python(`
import sys, json, hmac, hashlib, base64
secret = sys.argv[1].encode()
mac = lambda domain, value: hmac.new(secret, domain + b'\\0' + value.encode('latin1'), hashlib.sha256).digest()
print(json.dumps({'uids': ['2.25.%d' % int.from_bytes(mac(b'uid', u)[:16], 'big') for u in sys.argv[2:]],
                  'patient': 'ANON-' + base64.b32encode(mac(b'patient', 'PAT-0001')[:10]).decode()}))
`, [SECRET_A, ...originals]));
  const p = new Pseudonymizer(Buffer.from(SECRET_A, 'utf8'));
  assert.deepEqual(originals.map((u) => p.uid(u)), expected.uids);
  assert.equal(p.patient('PAT-0001', 'ANON-'), expected.patient);
  // And the engine uses exactly that derivation for the instance UIDs it writes.
  const o = forwarded(deidentify(corpus.files[0], SETTINGS.basic, SECRET_A))!;
  assert.equal(o.studyUid, expected.uids[0]);
  assert.equal(o.sopInstanceUid, expected.uids[corpus.instances.length]);
});
