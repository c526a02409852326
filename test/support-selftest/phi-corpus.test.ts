/**
 * Self-test of the planted-PHI corpus and the fuzz mutator.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MUTATION_KINDS, PhiCorpus, generatePhiCorpus, mutate, mutationKind, searchableBytes } from '../support/phi-corpus';
import { dcmdump, python, repoRoot, withTempDir } from '../support/tools';

let dir: string;
let corpus: PhiCorpus;
let bytes: Map<string, Buffer>; // basename -> searchable bytes

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phi-corpus-'));
  corpus = await generatePhiCorpus(dir);
  bytes = new Map(corpus.files.map((f) => [path.basename(f), searchableBytes(fs.readFileSync(f))]));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('corpus: several files, MR and CT, mixed encodings', () => {
  assert.equal(corpus.files.length, 8);
  assert.deepEqual(new Set(corpus.instances.map((i) => i.syntax)), new Set(['explicitLE', 'implicitLE', 'explicitBE', 'deflatedLE']));
  assert.ok(corpus.instances.some((i) => i.undefinedLengths));
  assert.equal(new Set(corpus.instances.filter((i) => i.patient === 'A').map((i) => i.studyInstanceUID)).size, 1);
  assert.equal(new Set(corpus.instances.filter((i) => i.patient === 'A').map((i) => i.seriesInstanceUID)).size, 2);
  assert.equal(new Set(corpus.instances.map((i) => i.sopInstanceUID)).size, 8);
});

test('corpus: every file passes dcmdump', () => {
  for (const f of corpus.files) {
    const out = dcmdump(f);
    assert.match(out, /\(7fe0,0010\) OW /, f);
    assert.match(out, /\(0008,0016\) UI =(MR|CT)ImageStorage/, f);
  }
});

test('corpus: pydicom reads every file, every element and the pixel data', () => {
  const out = python(`
import sys, warnings, pydicom
warnings.simplefilter('ignore')  # pydicom 2.3 warns about tags newer than its dictionary
for f in sys.argv[1:]:
    ds = pydicom.dcmread(f)
    n = sum(1 for e in ds.iterall() if e.value is not None or True)
    print(ds.SOPClassUID.name, ds.pixel_array.shape, n > 800, str(ds.PatientName))
`, corpus.files);
  const lines = out.trim().split('\n');
  assert.equal(lines.length, corpus.files.length);
  for (const [i, line] of lines.entries()) {
    const inst = corpus.instances[i];
    assert.ok(line.startsWith(`${inst.patient === 'A' ? 'MR' : 'CT'} Image Storage (8, 8) True `), line);
    // Decoded non-ASCII names: ISO 2022 IR 87 kanji for A, UTF-8 for B.
    assert.match(line, inst.patient === 'A' ? /=亜唖\^娃阿$/ : /Ŝtraße/);
  }
});

test('markers are unique, none is part of another, each is in a corpus file', () => {
  const { markers } = corpus;
  assert.equal(new Set(markers).size, markers.length);
  assert.ok(markers.length > 5000);
  const joined = markers.join('\n');
  for (const m of markers) assert.equal(joined.indexOf(m), joined.lastIndexOf(m), `marker ${m} occurs inside another`);
  const all = [...bytes.values()];
  for (const m of markers) {
    assert.ok(all.some((b) => b.includes(Buffer.from(m, 'latin1'))), `marker ${JSON.stringify(m)} in no file`);
  }
});

test('every planting is where it says', () => {
  for (const p of corpus.plantedTags) {
    assert.ok(bytes.get(p.file)!.includes(Buffer.from(p.marker, 'latin1')), `${p.file} ${p.path} ${p.marker}`);
  }
  const kinds = new Set(corpus.plantedTags.map((p) => p.kind));
  for (const k of ['E.1-1', 'sequence-item', 'cross-reference', 'nested', 'private', 'un-sequence', 'overlay', 'curve', 'meta', 'charset']) {
    assert.ok(kinds.has(k as never), k);
  }
  assert.ok(corpus.plantedTags.some((p) => p.path.split('[0].').length === 4), 'three levels of nesting');
});

test('every single-tag row of Table E.1-1 is present in every file', () => {
  const rows: { tag: string }[] = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'data/standard/ps3.15-e1-1.json'), 'utf8'));
  for (const inst of corpus.instances) {
    const paths = corpus.plantedTags.filter((p) => p.file === inst.file).map((p) => p.path)
      .concat(corpus.unmarkedTags.filter((u) => u.file === inst.file).map((u) => u.path));
    for (const r of rows) {
      if (!/^\([0-9A-F]{4},[0-9A-F]{4}\)$/i.test(r.tag)) continue;
      if (r.tag.startsWith('(0000,') && !inst.commandElements) continue;
      assert.ok(paths.some((p) => p.includes(r.tag.toUpperCase())), `${inst.file}: ${r.tag}`);
    }
  }
});

test('cross-references point at instances of the corpus', () => {
  const sops = new Set(corpus.instances.map((i) => i.sopInstanceUID));
  const refs = corpus.plantedTags.filter((p) => p.kind === 'cross-reference');
  assert.ok(refs.some((r) => r.path.startsWith('(0008,1140)') && sops.has(r.marker)));
  assert.ok(refs.some((r) => r.path.startsWith('(0008,2112)') && sops.has(r.marker)));
  const studies = new Set(corpus.instances.map((i) => i.studyInstanceUID));
  assert.ok(refs.some((r) => r.path.startsWith('(0008,1110)') && studies.has(r.marker)));
});

test('generation is deterministic', () => withTempDir(async (d2) => {
  const again = await generatePhiCorpus(d2);
  assert.deepEqual(again.markers, corpus.markers);
  for (const [i, f] of again.files.entries()) assert.ok(fs.readFileSync(f).equals(fs.readFileSync(corpus.files[i])), f);
}));

test('mutate: deterministic, covers every kind, damages every encoding', () => {
  assert.deepEqual(MUTATION_KINDS.map((_, s) => mutationKind(s)), [...MUTATION_KINDS]);
  for (const f of corpus.files) {
    const input = fs.readFileSync(f);
    for (let seed = 0; seed < MUTATION_KINDS.length * 2; seed++) {
      const a = mutate(input, seed);
      assert.ok(!a.equals(input), `${path.basename(f)} seed ${seed} (${mutationKind(seed)}) changed nothing`);
      if (seed < MUTATION_KINDS.length) assert.ok(a.equals(mutate(input, seed)), 'same seed, same bytes');
      const kind = mutationKind(seed);
      if (kind === 'truncate') assert.ok(a.length < input.length);
      if (kind === 'hugeText') assert.ok(searchableBytes(a).length > 50 * 1024 * 1024);
      if (kind === 'nestingBomb') assert.ok(searchableBytes(a).length > 10_000 * 16);
    }
  }
});
