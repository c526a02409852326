import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { repoRoot, withTempDir } from '../support/tools';

const CLI = path.join(repoRoot(), 'dist/src/cli/main.js');
const SAMPLES = path.join(repoRoot(), 'test/fixtures/samples');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** relative path -> sha256 of every file under dir. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else out.set(r, crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, r))).digest('hex'));
    }
  };
  if (fs.existsSync(dir)) walk('');
  return out;
}

/** A realistic input folder: samples in nested folders, no extensions on some, a stray text file. */
function makeInput(dir: string): string {
  const input = path.join(dir, 'in');
  // The pydicom MR_small_* files re-encode one instance (same SOP Instance UID, so the same
  // output path); keeping one of them keeps the expected outputs unambiguous.
  for (const [i, f] of fs.readdirSync(SAMPLES).filter((n) => !n.startsWith('pydicom__MR_small_')).entries()) {
    const sub = path.join(input, `patient${i % 3}`, `series${i % 2}`);
    fs.mkdirSync(sub, { recursive: true });
    fs.copyFileSync(path.join(SAMPLES, f), path.join(sub, i % 4 === 0 ? `IM${i}` : f));
  }
  fs.writeFileSync(path.join(input, 'notes.txt'), 'not a DICOM file\n');
  return input;
}

test('deidentify: every input written, skipped, ignored or quarantined with a reason; idempotent re-run', async () => {
  await withTempDir((dir) => {
    const input = makeInput(dir);
    const out = path.join(dir, 'out');
    const args = ['deidentify', input, out, '--secret-file', path.join(dir, 'secret'), '--summary-json', path.join(dir, 'summary.json'), '--jobs', '2'];
    const first = cli(args);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /written: \d+/);
    assert.match(first.stderr, /created a new pseudonymization secret/);
    assert.equal((fs.statSync(path.join(dir, 'secret')).mode & 0o777).toString(8), '600');

    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    const inputs = tree(input).size;
    assert.equal(summary.files, inputs);
    const o = summary.outcomes;
    assert.equal(o.written + o.skipped + o.quarantined + o.ignored, inputs);
    assert.equal(o.ignored, 2, 'notes.txt and the samples SOURCES.md are not DICOM');
    assert.ok(o.written >= 10, `written ${o.written}`);

    // Quarantine sits beside the output, with one reason per original, never inside OUT.
    const q = tree(`${out}.quarantine`);
    assert.equal([...q.keys()].filter((k) => k.endsWith('.dcm')).length, o.quarantined);
    for (const k of q.keys()) {
      if (!k.endsWith('.json')) continue;
      const reason = JSON.parse(fs.readFileSync(path.join(`${out}.quarantine`, k), 'utf8'));
      assert.ok(reason.code && reason.reason, `reason file ${k} names a code and a reason`);
    }
    const written = tree(out);
    assert.equal(written.size, o.written);
    for (const k of written.keys()) assert.match(k, /^ANON-[A-Z2-7]{16}\/2\.25\.\d+\/2\.25\.\d+\/2\.25\.\d+\.dcm$/);

    // The log lines carry no identifiers: no input path, no patient name of the samples.
    assert.doesNotMatch(first.stdout + first.stderr, /patient0|CompressedSamples|pydicom__/);

    const second = cli(args);
    assert.equal(second.status, 0, second.stderr);
    assert.deepEqual(tree(out), written, 'a re-run writes the same files with the same bytes');
    assert.deepEqual(tree(`${out}.quarantine`), q);
  });
});

test('deidentify: an output folder inside the input is never read back', async () => {
  await withTempDir((dir) => {
    const input = makeInput(dir);
    const out = path.join(input, 'deid');
    const args = ['deidentify', input, out, '--secret-file', path.join(dir, 'secret'), '--summary-json', path.join(dir, 's.json'), '--no-progress'];
    assert.equal(cli(args).status, 0);
    const files = JSON.parse(fs.readFileSync(path.join(dir, 's.json'), 'utf8')).files;
    assert.equal(cli(args).status, 0);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 's.json'), 'utf8')).files, files);
  });
});

test('deidentify: usage errors name the option and exit 2', async () => {
  await withTempDir((dir) => {
    const r = cli(['deidentify', SAMPLES, path.join(dir, 'o'), '--option', 'retainEverything', '--profile', 'basic']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--option: unknown option "retainEverything"/);
    const k = cli(['deidentify', SAMPLES, path.join(dir, 'o'), '--keep', 'NoSuchKeyword']);
    assert.equal(k.status, 2);
    assert.match(k.stderr, /--keep: unknown attribute "NoSuchKeyword"/);
  });
});

test('deidentify: the secret can come from DEID_SECRET, and the same secret gives the same paths', async () => {
  await withTempDir((dir) => {
    const one = path.join(dir, 'one');
    fs.mkdirSync(one);
    fs.copyFileSync(path.join(SAMPLES, 'pydicom__CT_small.dcm'), path.join(one, 'a.dcm'));
    const env = { DEID_SECRET: 'an environment secret of enough length' };
    assert.equal(cli(['deidentify', one, path.join(dir, 'o1')], env).status, 0);
    assert.equal(cli(['deidentify', one, path.join(dir, 'o2')], env).status, 0);
    assert.deepEqual(tree(path.join(dir, 'o1')), tree(path.join(dir, 'o2')));
    assert.equal(fs.existsSync(path.join(process.cwd(), '.deid-secret-should-not-exist')), false);
  });
});
