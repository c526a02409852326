import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log';
import { eventsFor, lines, tempDir, writeLines } from './helpers';

// dist/test/audit -> dist/src/cli/main.js (the tests run compiled, like the CLI itself).
const CLI = path.resolve(__dirname, '../../src/cli/main.js');

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function rotatedLog(): Promise<string> {
  const file = path.join(tempDir(), 'audit.jsonl');
  const log = AuditLog.open({ stdout: false, file, maxFileMB: 0.01 });
  for (let i = 0; i < 20; i++) for (const e of eventsFor(i)) log.write(e);
  await log.close();
  return file;
}

test('audit verify FILE: "ok: N entries" and exit 0 over the file and its rotated siblings', async () => {
  const file = await rotatedLog();
  assert.ok(fs.existsSync(`${file}.2`));
  assert.deepEqual(cli('audit', 'verify', file), { status: 0, stdout: 'ok: 60 entries\n', stderr: '' });
});

test('audit verify FILE: "broken at FILE:LINE: reason" and exit 1', async () => {
  const file = await rotatedLog();
  const ls = lines(file);
  writeLines(file, [ls[0], ls[2], ls[1], ...ls.slice(3)]);
  const r = cli('audit', 'verify', file);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, `broken at ${file}:2: prevHash does not match the previous entry: an entry was deleted, inserted or reordered\n`);

  fs.rmSync(`${file}.1`);
  const gap = cli('audit', 'verify', file);
  assert.equal(gap.status, 1);
  assert.match(gap.stdout, new RegExp(`^broken at ${file.replace(/\./g, '\\.')}:1: the chain does not continue from ${file}\\.2`));
});

test('audit verify on a missing file is a usage error (exit 2)', () => {
  const r = cli('audit', 'verify', path.join(tempDir(), 'nope.jsonl'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no audit file/);
});

test('with stdout on, stdout carries the same lines as the file, so the collector\'s copy verifies too', () => {
  const file = path.join(tempDir(), 'audit.jsonl');
  const script = `
    const { AuditLog } = require(${JSON.stringify(path.resolve(__dirname, '../../src/audit/audit-log.js'))});
    const { eventsFor } = require(${JSON.stringify(path.resolve(__dirname, 'helpers.js'))});
    const log = AuditLog.open({ stdout: true, file: ${JSON.stringify(file)}, maxFileMB: 100 });
    for (const e of eventsFor(1)) log.write(e);
    log.close();`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, fs.readFileSync(file, 'utf8'));
  const copy = path.join(tempDir(), 'collected.jsonl');
  fs.writeFileSync(copy, r.stdout);
  assert.deepEqual(cli('audit', 'verify', copy), { status: 0, stdout: 'ok: 3 entries\n', stderr: '' });
});
