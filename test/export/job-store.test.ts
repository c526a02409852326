import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { RouteSchema } from '../../src/config/schema';
import { JobStore } from '../../src/export/job-store';
import { JobRecord } from '../../src/export/job-types';

function record(id: string): JobRecord {
  return {
    id,
    createdAt: new Date().toISOString(),
    requestedBy: 'token#1',
    source: 'pacs',
    query: { accessionNumbers: ['A1', 'A2'] },
    route: RouteSchema.parse({ name: 'research', destinations: ['archive'] }),
  };
}

function tempStore(): JobStore {
  return new JobStore(fs.mkdtempSync(path.join(os.tmpdir(), 'jobs-')));
}

test('a job is rebuilt from its event log: counts, series done, spooled instances, errors', () => {
  const store = tempStore();
  const id = store.newId();
  const job = store.create(record(id));
  store.append(job, { e: 'state', state: 'running' });
  store.append(job, { e: 'found', studies: [{ study: 's1', newStudyUid: '2.25.1' }, { study: 's2', newStudyUid: '2.25.2', instances: 3 }] });
  store.append(job, { e: 'series', study: 's1', series: 'se1', instances: 2 });
  store.append(job, { e: 'spooled', spoolId: 'a', study: 's1', series: 'se1', sop: 'i1', bytes: 100 });
  store.append(job, { e: 'spooled', spoolId: 'b', study: 's1', series: 'se1', sop: 'i2', bytes: 50 });
  store.append(job, { e: 'series-done', study: 's1', series: 'se1', missing: 0 });
  store.append(job, { e: 'settled', spoolId: 'a', outcome: 'forwarded', outputs: [{ newStudyUid: '2.25.1', newSeriesUid: '2.25.10', newSopInstanceUid: '2.25.100', sopClassUid: '1.2', pixelSha256: 'ab' }] });

  const [again] = store.loadAll().jobs;
  assert.equal(again.record.id, id);
  assert.equal(again.state, 'running');
  assert.ok(again.seriesDone('s1', 'se1'));
  assert.ok(!again.seriesDone('s2', 'x'));
  assert.ok(again.hasSpooled('i2'));
  assert.ok(!again.allSettled());
  const s = again.status();
  assert.deepEqual(s.studies, { found: 2, done: 0, failed: 0 });
  // s1 listed 2 instances, s2 not listed yet: its QIDO count (3) stands in.
  assert.deepEqual(s.instances, { found: 5, retrieved: 2, done: 1, failed: 0, pending: 1 });
  assert.equal(s.bytes, 150);
  assert.equal(s.route, 'research');

  store.append(again, { e: 'settled', spoolId: 'b', outcome: 'quarantined', code: 'BURNED_IN' });
  assert.ok(again.allSettled());
  const after = again.status();
  assert.equal(after.instances.failed, 1);
  assert.equal(after.studies.failed, 1);
  assert.equal(after.errors[0].newStudyUid, '2.25.1');
  assert.equal(after.errors[0].instances, 1);
  assert.equal(again.outputs().length, 1);
});

test('an instance spooled twice (re-retrieved after a crash) counts once; delivered beats quarantined', () => {
  const store = tempStore();
  const job = store.create(record(store.newId()));
  store.append(job, { e: 'found', studies: [{ study: 's1', newStudyUid: '2.25.1' }] });
  store.append(job, { e: 'series', study: 's1', series: 'se1', instances: 1 });
  store.append(job, { e: 'spooled', spoolId: 'a', study: 's1', series: 'se1', sop: 'i1', bytes: 10 });
  store.append(job, { e: 'spooled', spoolId: 'b', study: 's1', series: 'se1', sop: 'i1', bytes: 10 });
  store.append(job, { e: 'settled', spoolId: 'a', outcome: 'quarantined', code: 'X' });
  store.append(job, { e: 'settled', spoolId: 'b', outcome: 'forwarded', outputs: [] });
  store.append(job, { e: 'series-done', study: 's1', series: 'se1', missing: 0 });
  const s = job.status();
  assert.deepEqual(s.instances, { found: 1, retrieved: 1, done: 1, failed: 0, pending: 0 });
  assert.equal(s.bytes, 10);
  assert.deepEqual(s.studies, { found: 1, done: 1, failed: 0 });
});

test('a torn last line (crash mid-append) is ignored; job.json is private', () => {
  const store = tempStore();
  const id = store.newId();
  const job = store.create(record(id));
  store.append(job, { e: 'state', state: 'running' });
  fs.appendFileSync(path.join(store.dir, id, 'events.jsonl'), '{"t":"2026-01-01T00:00:00Z","e":"spool');
  const { jobs, unreadable } = store.loadAll();
  assert.deepEqual(unreadable, []);
  assert.equal(jobs[0].state, 'running');
  assert.equal(fs.statSync(path.join(store.dir, id, 'job.json')).mode & 0o777, 0o600);
});

test('a folder without a readable job.json is reported, not fatal', () => {
  const store = tempStore();
  fs.mkdirSync(path.join(store.dir, 'exp-broken'));
  fs.writeFileSync(path.join(store.dir, 'exp-broken', 'job.json'), '{');
  assert.deepEqual(store.loadAll().unreadable, ['exp-broken']);
});

test('a settle heard before its spooled line (the pipeline can be quicker than the log) still ends the job', () => {
  const store = tempStore();
  const job = store.create(record(store.newId()));
  store.append(job, { e: 'found', studies: [{ study: 's1', newStudyUid: '2.25.1' }] });
  store.append(job, { e: 'settled', spoolId: 'a', outcome: 'forwarded', outputs: [] });
  assert.ok(job.allSettled());
  store.append(job, { e: 'spooled', spoolId: 'a', study: 's1', series: 'se1', sop: 'i1', bytes: 1 });
  store.append(job, { e: 'spooled', spoolId: 'b', study: 's1', series: 'se1', sop: 'i2', bytes: 1 });
  assert.ok(!job.allSettled());
  assert.equal(job.status().instances.pending, 1);
  store.append(job, { e: 'settled', spoolId: 'b', outcome: 'quarantined', code: 'X' });
  assert.ok(job.allSettled());
  assert.equal(job.status().instances.pending, 0);
});
