import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log';
import { AuditEntry } from '../../src/audit/events';
import { auditFilesFor, verifyAuditFiles } from '../../src/audit/verify';
import { eventsFor, lines, pseudo, tempDir } from './helpers';

const MAX_MB = 0.01; // 10,485 bytes: about 20 lines per file
const MAX_BYTES = Math.floor(MAX_MB * 1024 * 1024);

async function rotatedLog(instances: number): Promise<{ file: string; entries: AuditEntry[] }> {
  const file = path.join(tempDir(), 'audit.jsonl');
  const log = AuditLog.open({ stdout: false, file, maxFileMB: MAX_MB });
  const entries = Array.from({ length: instances }, (_, i) => eventsFor(i)).flat().map((e) => log.write(e));
  await log.close();
  return { file, entries };
}

test('rotation keeps one chain across files: each file starts from the previous file\'s last hash', async () => {
  const { file, entries } = await rotatedLog(100);
  const files = auditFilesFor(file);
  assert.ok(files.length >= 5, `only ${files.length} files`);
  assert.equal(files.at(-1), file);
  assert.deepEqual(files.slice(0, -1), Array.from({ length: files.length - 1 }, (_, i) => `${file}.${files.length - 1 - i}`));
  for (const f of files) assert.ok(fs.statSync(f).size <= MAX_BYTES, `${f} is over the limit`);
  for (let i = 1; i < files.length; i++) {
    assert.equal(JSON.parse(lines(files[i])[0]).prevHash, JSON.parse(lines(files[i - 1]).at(-1)!).hash);
  }
  assert.deepEqual(files.flatMap(lines).map((l) => JSON.parse(l)), entries);
  assert.deepEqual(verifyAuditFiles(files), { ok: true, entries: 300 });
});

test('a deleted rotated file is detected, in the middle and at the oldest end', async () => {
  const { file } = await rotatedLog(100);
  const files = auditFilesFor(file);
  const middle = files.length - 3; // file.2
  const without = files.filter((_, i) => i !== middle);
  const r = verifyAuditFiles(without);
  assert.equal(r.ok, false);
  assert.deepEqual({ file: r.firstBroken!.file, line: r.firstBroken!.line }, { file: files[middle + 1], line: 1 });
  assert.match(r.firstBroken!.reason, /does not continue from/);

  fs.rmSync(files[0]);
  const oldest = verifyAuditFiles(auditFilesFor(file));
  assert.equal(oldest.firstBroken?.file, files[1]);
  assert.match(oldest.firstBroken!.reason, /does not start from zeros/);
});

test('a restart after rotation, and after a crash between rotation and the new file, continues the chain', async () => {
  const { file } = await rotatedLog(30);
  let log = AuditLog.open({ stdout: false, file, maxFileMB: MAX_MB });
  for (const e of eventsFor(1000)) log.write(e);
  await log.close();
  assert.deepEqual(verifyAuditFiles(auditFilesFor(file)), { ok: true, entries: 93 });

  // Crash right after `audit.jsonl -> audit.jsonl.1`: there is no current file.
  const siblings = auditFilesFor(file).slice(0, -1);
  siblings.forEach((p, i) => fs.renameSync(p, `${file}.${siblings.length - i + 1}`));
  fs.renameSync(file, `${file}.1`);
  log = AuditLog.open({ stdout: false, file, maxFileMB: MAX_MB });
  const next = log.write({ type: 'gateway.start', version: '0.1.0', configHash: 'aa'.repeat(32) });
  await log.close();
  assert.equal(next.seq, 94);
  assert.deepEqual(verifyAuditFiles(auditFilesFor(file)), { ok: true, entries: 94 });
});

test('search returns the whole history of a study\'s instances across rotated files, by new UID or by original hash', async () => {
  const file = path.join(tempDir(), 'audit.jsonl');
  const log = AuditLog.open({ stdout: false, file, maxFileMB: MAX_MB });
  for (let i = 0; i < 60; i++) for (const e of eventsFor(i)) log.write(e);
  // Search while the log is open: the current file is read up to the last line written.
  const study = '1.2.826.0.1.3680043.2.1125.9.3'; // the study of instances 3, 10, 17, ... (see eventsFor)
  const byNew = await log.search({ newStudyUid: pseudo.uid(study) });
  const byHash = await log.search({ originalStudyHash: pseudo.keyedHash(study) });
  const bySpool = await log.search({ spoolId: 'spool-10' });
  const forwarded = await log.find((e) => e.type === 'instance.forwarded', { limit: 5 });
  await log.close();

  assert.ok(auditFilesFor(file).length > 3);
  const instances = Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 7 === 3);
  assert.deepEqual(byNew.map((e) => `${e.type}:${'spoolId' in e ? e.spoolId : ''}`),
    instances.flatMap((i) => [`instance.received:spool-${i}`, `instance.deidentified:spool-${i}`, `instance.forwarded:spool-${i}`]));
  assert.deepEqual(byHash, byNew);
  assert.deepEqual(bySpool.map((e) => e.type), ['instance.received', 'instance.deidentified', 'instance.forwarded']);
  assert.equal(forwarded.length, 5);
  const reopened = AuditLog.open({ stdout: false, file, maxFileMB: MAX_MB });
  assert.deepEqual(await reopened.search({ newStudyUid: '2.25.1' }), []);
  await reopened.close();
});
