import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log';
import { ZERO_HASH } from '../../src/audit/chain';
import { AuditEntry, AuditEvent } from '../../src/audit/events';
import { verifyAuditFiles } from '../../src/audit/verify';
import { eventsFor, lines, pseudo, tempDir, writeLines } from './helpers';

/** A file with `n` entries (instances of three events each, cut to n). */
async function logWith(n: number, file = path.join(tempDir(), 'audit.jsonl')): Promise<{ file: string; entries: AuditEntry[] }> {
  const log = AuditLog.open({ stdout: false, file, maxFileMB: 100 });
  const entries: AuditEntry[] = [];
  for (let i = 0; entries.length < n; i++) {
    for (const e of eventsFor(i)) if (entries.length < n) entries.push(log.write(e));
  }
  await log.close();
  return { file, entries };
}

test('1000 entries form one chain, the file holds exactly the returned entries, at well over 1000 entries/s', async () => {
  const file = path.join(tempDir(), 'audit.jsonl');
  const log = AuditLog.open({ stdout: false, file, maxFileMB: 100 });
  const events = Array.from({ length: 334 }, (_, i) => eventsFor(i)).flat().slice(0, 1000);
  const t0 = process.hrtime.bigint();
  const entries = events.map((e) => log.write(e));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await log.close();

  assert.ok(ms < 1000, `1000 writes took ${ms.toFixed(0)} ms`);
  assert.deepEqual(entries.map((e) => e.seq), Array.from({ length: 1000 }, (_, i) => i + 1));
  assert.equal(entries[0].prevHash, ZERO_HASH);
  for (let i = 1; i < entries.length; i++) assert.equal(entries[i].prevHash, entries[i - 1].hash);
  assert.deepEqual(lines(file).map((l) => JSON.parse(l)), entries);
  assert.deepEqual(verifyAuditFiles([file]), { ok: true, entries: 1000 });
});

test('an edited field is reported at its line; re-hashing that line moves the break to the next line', async () => {
  const { file } = await logWith(30);
  const ls = lines(file);
  const e = JSON.parse(ls[4]);
  e.bytes = 1;
  writeLines(file, ls.map((l, i) => (i === 4 ? JSON.stringify(e) : l)));
  let r = verifyAuditFiles([file]);
  assert.equal(r.ok, false);
  assert.equal(r.firstBroken?.line, 5);
  assert.match(r.firstBroken!.reason, /hash mismatch/);
  assert.equal(r.entries, 4);

  // A forger who also recomputes the edited line's hash breaks the link to the next one.
  const { entryHash } = await import('../../src/audit/chain');
  e.hash = entryHash(e);
  writeLines(file, ls.map((l, i) => (i === 4 ? JSON.stringify(e) : l)));
  r = verifyAuditFiles([file]);
  assert.equal(r.firstBroken?.line, 6);
  assert.match(r.firstBroken!.reason, /prevHash does not match/);
});

test('a deleted line, a deleted first line and swapped lines are reported where they happen', async () => {
  const { file } = await logWith(30);
  const ls = lines(file);

  writeLines(file, ls.filter((_, i) => i !== 9));
  assert.deepEqual(verifyAuditFiles([file]).firstBroken, { file, line: 10, reason: 'prevHash does not match the previous entry: an entry was deleted, inserted or reordered' });

  writeLines(file, ls.slice(1));
  const first = verifyAuditFiles([file]).firstBroken!;
  assert.equal(first.line, 1);
  assert.match(first.reason, /does not start from zeros/);

  const swapped = [...ls];
  [swapped[19], swapped[20]] = [swapped[20], swapped[19]];
  writeLines(file, swapped);
  assert.equal(verifyAuditFiles([file]).firstBroken?.line, 20);
});

test('a seq gap is reported even when the hashes were forged consistently', async () => {
  const { entryHash } = await import('../../src/audit/chain');
  const { file } = await logWith(5);
  const es = lines(file).map((l) => JSON.parse(l));
  es[2].seq = 99; // and re-chain everything after it, as a careful forger would
  for (let i = 2; i < es.length; i++) {
    es[i].prevHash = es[i - 1].hash;
    es[i].hash = entryHash(es[i]);
  }
  writeLines(file, es.map((e) => JSON.stringify(e)));
  const r = verifyAuditFiles([file]);
  assert.equal(r.firstBroken?.line, 3);
  assert.match(r.firstBroken!.reason, /seq 99 where 3 was expected/);
});

test('a truncated last line is reported as truncated', async () => {
  const { file } = await logWith(10);
  const text = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, text.slice(0, text.length - 40));
  const r = verifyAuditFiles([file]);
  assert.deepEqual(r, { ok: false, entries: 9, firstBroken: { file, line: 10, reason: 'truncated last line (invalid JSON)' } });
});

test('a restart continues the chain from the last entry on disk', async () => {
  const { file, entries } = await logWith(5);
  const log = AuditLog.open({ stdout: false, file, maxFileMB: 100 });
  const next = log.write({ type: 'gateway.start', version: '0.1.0', configHash: 'cd'.repeat(32) });
  await log.close();
  assert.equal(next.seq, 6);
  assert.equal(next.prevHash, entries[4].hash);
  assert.deepEqual(verifyAuditFiles([file]), { ok: true, entries: 6 });
});

test('a restart after a torn write cuts the torn bytes off and records them in the chain', async () => {
  const { file } = await logWith(5);
  const text = fs.readFileSync(file, 'utf8');
  const torn = '{"seq":6,"time":"2026-';
  fs.writeFileSync(file, text + torn);
  assert.match(verifyAuditFiles([file]).firstBroken!.reason, /truncated/);

  const log = AuditLog.open({ stdout: false, file, maxFileMB: 100 });
  await log.close();
  const last = JSON.parse(lines(file).at(-1)!);
  assert.equal(last.type, 'audit.recovered');
  assert.equal(last.seq, 6);
  assert.equal(last.discardedBytes, Buffer.byteLength(torn));
  assert.deepEqual(verifyAuditFiles([file]), { ok: true, entries: 6 });
});

test('a restart keeps a last line that only lacks its newline, and a broken complete line stays as evidence', async () => {
  const { file } = await logWith(5);
  const text = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, text.slice(0, -1));
  let log = AuditLog.open({ stdout: false, file, maxFileMB: 100 });
  log.write({ type: 'gateway.stop', reason: 'test' });
  await log.close();
  assert.deepEqual(verifyAuditFiles([file]), { ok: true, entries: 6 });

  // An edited last line is not "repaired" away: verify keeps reporting it after a restart.
  const ls = lines(file);
  writeLines(file, [...ls.slice(0, -1), ls.at(-1)!.replace('"test"', '"TEST"')]);
  log = AuditLog.open({ stdout: false, file, maxFileMB: 100 });
  log.write({ type: 'gateway.stop', reason: 'again' });
  await log.close();
  const r = verifyAuditFiles([file]);
  assert.equal(r.firstBroken?.line, 6);
  assert.match(r.firstBroken!.reason, /hash mismatch/);
});

test('write refuses what it cannot write faithfully, and a refused write leaves the chain intact', async () => {
  const file = path.join(tempDir(), 'audit.jsonl');
  const log = AuditLog.open({ stdout: false, file, maxFileMB: 100 });
  const uid = '1.2.840.113619.2.55.3.604688119.969.1268071029.320';
  const bad: unknown[] = [
    { type: 'instance.received', spoolId: 's', callingAE: 'A', bytes: 1, originalSopHash: uid }, // raw UID where a hash belongs
    { type: 'instance.received', spoolId: 's', callingAE: 'A', bytes: 1, originalSopHash: pseudo.keyedHash(uid).toUpperCase() },
    { type: 'instance.received', spoolId: 's', callingAE: 'A', bytes: NaN, originalSopHash: pseudo.keyedHash(uid) },
    { type: 'gateway.stop', reason: 'x', hash: 'ab'.repeat(32) }, // reserved field
    { type: 'gateway.stop', reason: new Date() },
    { type: 'instance.deidentified', options: ['a', undefined] },
  ];
  for (const e of bad) assert.throws(() => log.write(e as AuditEvent), TypeError);
  log.write({ type: 'gateway.stop', reason: 'ok' });
  await log.close();
  assert.deepEqual(verifyAuditFiles([file]), { ok: true, entries: 1 });
  assert.doesNotMatch(fs.readFileSync(file, 'utf8'), /1\.2\.840\.113619/);
});

test('events built from keyed hashes leave no PHI in the log, and write does not alter any value', async () => {
  // What the log guarantees: hash fields hold digests (checked above) and values are written as
  // given. So a caller that follows the rule (originals -> keyedHash) leaks nothing; this proves
  // the log adds nothing of its own and changes nothing on the way.
  const phi = { name: 'DOE^JANE^Q', id: 'PAT-0042-XYZ', study: '1.2.3.4.5.6.7.8.9.2024', sop: '1.2.3.4.5.6.7.8.9.2024.1' };
  const event: AuditEvent = {
    type: 'instance.deidentified', spoolId: pseudo.keyedHash(`spool:${phi.id}`), route: 'r', profile: 'basic', options: ['retainUIDs', 'cleanDescriptors'],
    removed: 1, replaced: 2, remapped: 3,
    newStudyUid: pseudo.uid(phi.study), newSeriesUid: pseudo.uid(`${phi.study}.1`), newSopInstanceUid: pseudo.uid(phi.sop),
    pixelSha256Before: 'ef'.repeat(32), pixelSha256After: '01'.repeat(32),
    originalStudyHash: pseudo.keyedHash(phi.study), originalSopHash: pseudo.keyedHash(phi.sop),
  };
  const file = path.join(tempDir(), 'audit.jsonl');
  const log = AuditLog.open({ stdout: false, file, maxFileMB: 100 });
  const entry = log.write(event);
  await log.close();
  const { seq, time, prevHash, hash, ...rest } = entry;
  assert.deepEqual(rest, event);
  assert.ok(Number.isInteger(seq) && /^\d{4}-\d\d-\d\dT/.test(time) && prevHash.length === 64 && hash.length === 64);
  const bytes = fs.readFileSync(file, 'utf8');
  for (const value of Object.values(phi)) assert.ok(!bytes.includes(value), `${value} found in the audit file`);
  assert.deepEqual(JSON.parse(bytes), entry);
});
