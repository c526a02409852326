import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import type { AuditEvent } from '../../src/audit/events';
import { ExportsSchema, RouteSchema } from '../../src/config/schema';
import { JobProgress } from '../../src/export/job-progress';
import { JobRunner, RunnerDeps } from '../../src/export/job-runner';
import { JobStore } from '../../src/export/job-store';
import { ExportSource, InstanceRef, RetrieveSink, SeriesRef, SourceError, StudyRef } from '../../src/export/types';
import { Spool } from '../../src/spool/spool';
import { el, makeImage } from '../support/dicom-builder';

/**
 * The runner's decisions (what to retrieve, when to retry, what counts as missing) against an
 * in-memory source; the real sources are tested against Orthanc, and the whole chain in
 * test/integration/export.test.ts.
 */
const file = (sop: string): Buffer => makeImage({ rows: 4, cols: 4, extra: [el('SOPInstanceUID', sop), el('StudyInstanceUID', '1.1'), el('SeriesInstanceUID', '1.1.1')] });

class ScriptedSource implements ExportSource {
  readonly name = 'scripted';
  readonly delivery = 'sink' as const;
  calls: string[] = [];
  /** Failures to throw, in order, before retrieves succeed. */
  retrieveFailures: Error[] = [];
  /** SOP UIDs the source "loses" (listed but never sent). */
  lost = new Set<string>();
  seriesFailure: Error | undefined;
  /** Announce NumberOfSeriesRelatedInstances in the series answers (lets the runner skip listing). */
  announceCounts = false;

  constructor(private readonly studies: Record<string, Record<string, string[]>>) {}

  async findStudies(): Promise<StudyRef[]> {
    this.calls.push('findStudies');
    return Object.keys(this.studies).map((studyUid) => ({ studyUid }));
  }
  async findSeries(studyUid: string): Promise<SeriesRef[]> {
    this.calls.push(`findSeries ${studyUid}`);
    if (this.seriesFailure && studyUid === '1.1') throw this.seriesFailure;
    return Object.entries(this.studies[studyUid]).map(([seriesUid, sops]) => ({ studyUid, seriesUid, ...(this.announceCounts ? { numberOfInstances: sops.length } : {}) }));
  }
  async findInstances(studyUid: string, seriesUid: string): Promise<InstanceRef[]> {
    this.calls.push(`findInstances ${seriesUid}`);
    return this.studies[studyUid][seriesUid].map((sopInstanceUid) => ({ studyUid, seriesUid, sopInstanceUid }));
  }
  async retrieveSeries(series: SeriesRef, sink: RetrieveSink) {
    this.calls.push(`retrieveSeries ${series.seriesUid}`);
    return this.send(this.studies[series.studyUid][series.seriesUid], sink);
  }
  async retrieveInstances(instances: InstanceRef[], sink: RetrieveSink) {
    this.calls.push(`retrieveInstances ${instances.map((i) => i.sopInstanceUid).join(',')}`);
    return this.send(instances.map((i) => i.sopInstanceUid), sink);
  }
  async probe(): Promise<void> {}
  async close(): Promise<void> {}

  private async send(sops: string[], sink: RetrieveSink) {
    const failure = this.retrieveFailures.shift();
    if (failure) throw failure;
    let received = 0;
    for (const sop of sops) {
      if (this.lost.has(sop)) continue;
      const w = sink.open();
      w.write(file(sop));
      await w.commit();
      received++;
    }
    return { received, failed: 0 };
  }
}

async function setup(source: ScriptedSource, preload?: (store: JobStore, job: JobProgress) => void) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runner-'));
  const spool = await Spool.open(path.join(dir, 'spool'), { fsync: false, highWaterPercent: 100, minFreeMB: 0 });
  const store = new JobStore(path.join(dir, 'jobs'));
  const job = store.create({ id: store.newId(), createdAt: new Date().toISOString(), requestedBy: 'test', source: 'scripted', query: { patientIds: ['P'] }, route: RouteSchema.parse({ name: 'r', destinations: ['d'] }) });
  preload?.(store, job);
  const audits: AuditEvent[] = [];
  const deps: RunnerDeps = {
    store, spool,
    limits: ExportsSchema.parse({ maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 2 }),
    keyedHash: (v) => `h(${v})`,
    newUid: (v) => `2.25.${v.length}`,
    expect: () => () => undefined,
    settled: async () => undefined, // the pipeline is not part of this test
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    audit: (e) => void audits.push(e),
  };
  return { spool, store, job, audits, run: () => new JobRunner(deps, source).run(job, new AbortController().signal) };
}

test('every listed instance is retrieved once into the spool, tagged with the job', async () => {
  const source = new ScriptedSource({ '1.1': { '1.1.1': ['1.1.1.1', '1.1.1.2'], '1.1.2': ['1.1.2.1'] }, '1.2': { '1.2.1': ['1.2.1.1'] } });
  const { spool, job, run } = await setup(source);
  await run();
  const s = job.status();
  assert.deepEqual([s.studies.found, s.series.found, s.series.retrieved, s.instances.found, s.instances.retrieved, s.instances.failed], [2, 3, 3, 4, 4, 0]);
  assert.equal(spool.counts().incoming, 4);
  const entry = spool.claim()!;
  assert.equal(entry.meta.job, job.record.id);
  assert.equal(entry.meta.source, 'export');
  assert.equal(job.state, 'finishing');
});

test('transient failures are retried with a logged backoff; a source that keeps losing an instance reports it missing', async () => {
  const source = new ScriptedSource({ '1.1': { '1.1.1': ['1.1.1.1', '1.1.1.2', '1.1.1.3'] } });
  source.retrieveFailures = [new SourceError('WADO-RS: HTTP 503', true, 503)];
  source.lost.add('1.1.1.3');
  const { store, job, run } = await setup(source);
  await run();
  // 503 -> whole series again; then 1 lost -> instance retrieves for it until attempts run out.
  assert.deepEqual(source.calls.filter((c) => c.startsWith('retrieve')), ['retrieveSeries 1.1.1', 'retrieveSeries 1.1.1', 'retrieveInstances 1.1.1.3']);
  const s = job.status();
  assert.deepEqual([s.instances.retrieved, s.instances.failed, s.studies.failed], [2, 1, 1]);
  assert.equal(s.errors[0].code, 'NOT_RETRIEVED');
  const events = fs.readFileSync(path.join(store.dir, job.record.id, 'events.jsonl'), 'utf8');
  assert.match(events, /"e":"retry","attempt":1,"delayMs":\d+,"code":"RETRIEVE_FAILED_503"/);
});

test('a permanent failure is not retried: the study is reported and the job goes on', async () => {
  const source = new ScriptedSource({ '1.1': { '1.1.1': ['1.1.1.1'] }, '1.2': { '1.2.1': ['1.2.1.1'] } });
  source.seriesFailure = new SourceError('QIDO /studies/{study}/series: HTTP 403', false, 403);
  const { job, audits, run } = await setup(source);
  await run();
  assert.equal(source.calls.filter((c) => c === 'findSeries 1.1').length, 1);
  assert.deepEqual(audits.filter((e) => e.type === 'export.study-failed'), [{ type: 'export.study-failed', job: job.record.id, studyHash: 'h(1.1)', code: 'SERIES_QUERY_FAILED_403' }]);
  const s = job.status();
  assert.deepEqual([s.studies.found, s.studies.failed, s.instances.retrieved], [2, 1, 1]);
  assert.deepEqual(s.errors.map((e) => e.code), ['SERIES_QUERY_FAILED_403']);
});

test('a resumed job skips finished series and retrieves only the instances its log lacks', async () => {
  const source = new ScriptedSource({ '1.1': { '1.1.1': ['1.1.1.1', '1.1.1.2'], '1.1.2': ['1.1.2.1', '1.1.2.2', '1.1.2.3'] } });
  const { job, run } = await setup(source, (store, j) => {
    store.append(j, { e: 'found', studies: [{ study: 'h(1.1)', newStudyUid: '2.25.3' }] });
    store.append(j, { e: 'series', study: 'h(1.1)', series: 'h(1.1.1)', instances: 2 });
    store.append(j, { e: 'spooled', spoolId: 'x1', study: 'h(1.1)', series: 'h(1.1.1)', sop: 'h(1.1.1.1)', bytes: 1 });
    store.append(j, { e: 'spooled', spoolId: 'x2', study: 'h(1.1)', series: 'h(1.1.1)', sop: 'h(1.1.1.2)', bytes: 1 });
    store.append(j, { e: 'series-done', study: 'h(1.1)', series: 'h(1.1.1)', missing: 0 });
    store.append(j, { e: 'spooled', spoolId: 'x3', study: 'h(1.1)', series: 'h(1.1.2)', sop: 'h(1.1.2.2)', bytes: 1 });
  });
  await run();
  assert.deepEqual(source.calls.filter((c) => c.startsWith('retrieve')), ['retrieveInstances 1.1.2.1,1.1.2.3']);
  assert.deepEqual([job.status().instances.retrieved, job.status().instances.found], [5, 5]);
});

test('a query that fails for good fails the run with the code', async () => {
  const source = new ScriptedSource({});
  source.findStudies = async () => {
    throw new SourceError('QIDO /studies: ECONNREFUSED', true);
  };
  const { run } = await setup(source);
  await assert.rejects(run(), (err: Error & { code?: string }) => err.code === 'QUERY_FAILED' && /ECONNREFUSED/.test(err.message));
});

test('a fresh series whose count the PACS announced is retrieved whole without listing its instances', async () => {
  const source = new ScriptedSource({ '1.1': { '1.1.1': ['1.1.1.1', '1.1.1.2'], '1.1.2': ['1.1.2.1', '1.1.2.2'] } });
  source.announceCounts = true;
  source.lost.add('1.1.2.2');
  const { job, run } = await setup(source);
  await run();
  // 1.1.1 complete at once; 1.1.2 came short, so it is listed and the missing one fetched alone (3 attempts).
  assert.ok(!source.calls.includes('findInstances 1.1.1'), source.calls.join('; '));
  assert.deepEqual(source.calls.filter((c) => c.includes('1.1.2') && !c.startsWith('findSeries')), [
    'retrieveSeries 1.1.2', 'findInstances 1.1.2', 'retrieveInstances 1.1.2.2', 'retrieveInstances 1.1.2.2', 'retrieveInstances 1.1.2.2',
  ]);
  const s = job.status();
  assert.deepEqual([s.series.retrieved, s.instances.found, s.instances.retrieved, s.instances.failed], [2, 4, 3, 1]);
});
