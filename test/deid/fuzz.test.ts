/**
 * Fuzz: ~3000 deterministically damaged inputs (test/support/phi-corpus.ts mutate()) through
 * readInstance + Engine.process, in-process, alternating profiles. Every input must end in an
 * outcome (forward / skip / quarantine) or a DicomParseError with a code and a message; any
 * other exception, a hang, or a forwarded output that does not parse again fails the test and
 * names the seed that reproduces it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BufferSource } from '../../src/dicom/byte-source';
import { DicomErrorCode, DicomParseError } from '../../src/dicom/errors';
import { readInstance } from '../../src/dicom/part10';
import { PartsSource } from '../../src/dicom/parts-source';
import { DeidOutcome, DeidOutput, Engine } from '../../src/deid/deidentify';
import { DEFAULT_SETTINGS, DeidSettings, PIXEL_RISKS } from '../../src/deid/settings';
import { MUTATION_KINDS, MutationKind, generatePhiCorpus, mutate } from '../support/phi-corpus';
import { repoRoot } from '../support/tools';

// ---------------------------------------------------------------- setup and helpers

const SAMPLES = ['pydicom__CT_small.dcm', 'pydicom__MR_small_bigendian.dcm', 'pydicom__test-SR.dcm', 'pydicom__image_dfl.dcm'];

/**
 * Inputs per mutation kind. hugeText builds a 50 MB value per input (about 0.3 s just to
 * build), so it gets a couple per input file rather than a sixth of the budget.
 */
const COUNTS: Record<MutationKind, number> = {
  truncate: 580, flipHeaderBytes: 580, badLength: 580, garbleVR: 580, nestingBomb: 580, hugeText: 24,
};

const MAX_MS_PER_INPUT = 2000;
/** Engine time over all inputs (about 8 s on one idle core); building the mutations is not counted. */
const MAX_TOTAL_MS = 60_000;

const ERROR_CODES: ReadonlySet<DicomErrorCode> = new Set<DicomErrorCode>(['NOT_DICOM', 'TRUNCATED', 'BAD_LENGTH', 'BAD_VR', 'BAD_ITEM',
  'NESTING_TOO_DEEP', 'VALUE_TOO_LONG', 'UNSUPPORTED_TRANSFER_SYNTAX', 'BAD_DEFLATE', 'MISSING_ATTRIBUTE']);

const SECRET = Buffer.from('fuzz-test-secret-0123456789abcdef', 'utf8');

/** Alternating settings: both profiles, and basic with options (more code paths: shifting, cleaning). */
const ENGINES: { name: string; engine: Engine }[] = ([
  ['pixel-only', { ...DEFAULT_SETTINGS, acceptRisks: new Set(PIXEL_RISKS) }],
  ['basic', { ...DEFAULT_SETTINGS, profile: 'basic', acceptRisks: new Set(PIXEL_RISKS) }],
  ['basic+options', { ...DEFAULT_SETTINGS, profile: 'basic', acceptRisks: new Set(PIXEL_RISKS),
    options: new Set(['retainLongModifiedDates', 'cleanDescriptors', 'retainSafePrivate']) }],
] as [string, DeidSettings][]).map(([name, settings]) => ({ name, engine: new Engine(settings, SECRET) }));

interface Input { name: string; bytes: Buffer }
interface Case { input: Input; seed: number; kind: MutationKind; engine: (typeof ENGINES)[number] }

/** What happened to one input; `failure` is set when the engine misbehaved. */
interface Result { outcome: string; ms: number; failure?: string }

function outputBytes(o: DeidOutput): Buffer {
  const body = new PartsSource(o.parts);
  return Buffer.concat([o.meta, body.slice(0, body.size)]);
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}\n      ${(err.stack ?? '').split('\n').slice(1, 5).join('\n      ')}`;
  return `non-Error thrown: ${String(err)}`;
}

function reproducer(c: Case): string {
  return `input ${c.input.name}, seed ${c.seed}, kind ${c.kind}, settings ${c.engine.name} `
    + `(mutate(bytes, ${c.seed}, '${c.kind}'))`;
}

/** Runs one damaged input; never throws for anything the engine does. */
function runCase(c: Case): Result {
  let mutated: Buffer;
  try {
    mutated = mutate(c.input.bytes, c.seed, c.kind);
  } catch (err) {
    throw new Error(`mutate() itself failed for ${reproducer(c)}: ${describeError(err)}`);
  }
  const t0 = performance.now();
  const done = (outcome: string, failure?: string): Result => ({ outcome, ms: performance.now() - t0, failure });
  let outcome: DeidOutcome;
  try {
    outcome = c.engine.engine.process(readInstance(new BufferSource(mutated)));
  } catch (err) {
    if (!(err instanceof DicomParseError)) return done('crash', `threw ${describeError(err)}`);
    if (!ERROR_CODES.has(err.code) || typeof err.message !== 'string' || err.message.trim() === '') {
      return done('crash', `DicomParseError without a proper code/message: ${JSON.stringify({ code: err.code, message: err.message })}`);
    }
    return done(`error:${err.code}`);
  }
  if (outcome.kind !== 'forward') {
    if (!outcome.code || !outcome.reason) return done(outcome.kind, `${outcome.kind} without code/reason: ${JSON.stringify(outcome)}`);
    return done(`${outcome.kind}:${outcome.code}`);
  }
  // A forwarded output must be a readable DICOM file, and processing it again must not crash.
  try {
    const again = readInstance(new BufferSource(outputBytes(outcome.output)));
    c.engine.engine.process(again);
  } catch (err) {
    return done('forward', `forwarded output does not parse / re-process: ${describeError(err)}`);
  }
  return done('forward');
}

let work: string;
const inputs: Input[] = [];

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-fuzz-'));
  const corpus = await generatePhiCorpus(work);
  for (const f of corpus.files) inputs.push({ name: `corpus/${path.basename(f)}`, bytes: fs.readFileSync(f) });
  for (const s of SAMPLES) inputs.push({ name: s, bytes: fs.readFileSync(path.join(repoRoot(), 'test/fixtures/samples', s)) });
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function cases(): Case[] {
  const out: Case[] = [];
  MUTATION_KINDS.forEach((kind, k) => {
    for (let n = 0; n < COUNTS[kind]; n++) {
      // Each input goes through every settings in turn.
      const engine = ENGINES[Math.floor(n / inputs.length) % ENGINES.length];
      out.push({ input: inputs[n % inputs.length], seed: (k + 1) * 100_000 + n, kind, engine });
    }
  });
  return out;
}

// ---------------------------------------------------------------- tests

test('the unmutated inputs are processed without error (the fuzz starts from valid files)', () => {
  for (const input of inputs) {
    for (const { name, engine } of ENGINES) {
      const outcome = engine.process(readInstance(new BufferSource(input.bytes)));
      assert.ok(outcome.kind === 'forward' || outcome.kind === 'skip', `${input.name} with ${name}: ${JSON.stringify(outcome).slice(0, 300)}`);
    }
  }
});

test('fuzz: ~3000 mutated inputs end in an outcome or a coded DicomParseError, quickly', (t) => {
  const all = cases();
  assert.ok(all.length >= 2900, `${all.length} cases`);
  const failures: string[] = [];
  const slow: string[] = [];
  const tally = new Map<string, number>();
  const byKind = new Map<MutationKind, Map<string, number>>();
  const started = performance.now();
  let engineMs = 0;
  for (const c of all) {
    const r = runCase(c);
    engineMs += r.ms;
    if (r.failure && failures.length < 30) failures.push(`${reproducer(c)}:\n      ${r.failure}`);
    if (r.ms > MAX_MS_PER_INPUT) slow.push(`${reproducer(c)}: ${r.ms.toFixed(0)} ms`);
    tally.set(r.outcome, (tally.get(r.outcome) ?? 0) + 1);
    const k = byKind.get(c.kind) ?? new Map<string, number>();
    k.set(r.outcome, (k.get(r.outcome) ?? 0) + 1);
    byKind.set(c.kind, k);
  }
  const wall = performance.now() - started;
  const summary = [...tally].sort().map(([k, n]) => `${k}=${n}`).join(' ');
  // Shown in the TAP output: what the fuzz actually exercised.
  t.diagnostic(`${all.length} inputs, engine ${(engineMs / 1000).toFixed(1)} s (wall ${(wall / 1000).toFixed(1)} s with building the mutations): ${summary}`);

  assert.equal(failures.length, 0, `${failures.length} inputs broke the engine:\n  ${failures.join('\n  ')}`);
  assert.equal(slow.length, 0, `inputs over ${MAX_MS_PER_INPUT} ms:\n  ${slow.join('\n  ')}`);
  assert.ok(engineMs < MAX_TOTAL_MS, `the engine took ${engineMs.toFixed(0)} ms for ${all.length} inputs`);

  // Not vacuous: every kind ran, damage was detected, and some damaged files still went through.
  for (const kind of MUTATION_KINDS) assert.ok(byKind.has(kind), `kind ${kind} never ran`);
  const errors = [...tally].filter(([k]) => k.startsWith('error:')).reduce((n, [, v]) => n + v, 0);
  assert.ok(errors > all.length / 3, `only ${errors} parse errors: ${summary}`);
  assert.ok((tally.get('forward') ?? 0) > 50, `only ${tally.get('forward') ?? 0} forwarded: ${summary}`);
  // Appending a sequence nested 10,000 deep must always hit the nesting limit (no stack overflow).
  assert.deepEqual([...byKind.get('nestingBomb')!], [['error:NESTING_TOO_DEEP', COUNTS.nestingBomb]]);
});
