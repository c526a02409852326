import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { BufferSource } from '../../src/dicom/byte-source';
import { readInstance } from '../../src/dicom/part10';
import { Pseudonymizer } from '../../src/deid/pseudonyms';
import { el, makeImage } from '../support/dicom-builder';
import { GatewayProcess, startGatewayProcess, testConfig } from '../support/gateway-process';
import { freePort, hasOrthanc, Orthanc, startOrthanc } from '../support/orthanc';
import { generatePhiCorpus, PhiCorpus, searchableBytes } from '../support/phi-corpus';
import { waitFor } from '../support/async-peers';
import { repoRoot } from '../support/tools';

/**
 * Research exports end to end: a source Orthanc (the "clinical PACS", DICOMweb + C-FIND/C-MOVE)
 * loaded with studies, the real gateway process pulling from it, a research Orthanc receiving
 * the de-identified instances by STOW-RS. Everything on loopback, started and stopped here.
 */
const CLI = path.join(repoRoot(), 'dist/src/cli/main.js');
const SECRET = 'integration-test-secret-0123456789';
const TOKEN = 'test-token-123456';
const skip = hasOrthanc() ? false : 'Orthanc with the DICOMweb plugin is not installed (scripts/install-test-deps.sh)';

interface StudySpec { key: string; accession: string; date: string; modality: 'CT' | 'MR'; description: string; series: number; perSeries: number }

const STUDIES: StudySpec[] = [
  { key: '1', accession: 'ACC-EXP-1', date: '20240115', modality: 'CT', description: 'CT CHEST W CONTRAST', series: 2, perSeries: 3 },
  { key: '2', accession: 'ACC-EXP-2', date: '20240620', modality: 'CT', description: 'CT ABDOMEN', series: 1, perSeries: 4 },
  { key: '3', accession: 'ACC-EXP-3', date: '20230301', modality: 'CT', description: 'CT CHEST LOW DOSE', series: 1, perSeries: 2 },
  { key: '4', accession: 'ACC-EXP-4', date: '20240902', modality: 'MR', description: 'MR BRAIN', series: 1, perSeries: 2 },
];
const ROOT = '1.2.826.0.1.3680043.9.7777.77';
const studyUid = (s: StudySpec): string => `${ROOT}.1.${s.key}`;

function studyFiles(s: StudySpec): Buffer[] {
  const out: Buffer[] = [];
  for (let se = 1; se <= s.series; se++) {
    for (let i = 1; i <= s.perSeries; i++) {
      out.push(makeImage({
        modality: s.modality, rows: 32, cols: 32,
        extra: [
          el('StudyInstanceUID', studyUid(s)), el('SeriesInstanceUID', `${ROOT}.2.${s.key}.${se}`), el('SOPInstanceUID', `${ROOT}.3.${s.key}.${se}.${i}`),
          el('AccessionNumber', s.accession), el('StudyDate', s.date), el('StudyDescription', s.description),
          el('PatientName', `EXPORT^PATIENT${s.key}`), el('PatientID', `EXP-PID-${s.key}`), el('InstanceNumber', String(i)), el('SeriesNumber', String(se)),
        ],
      }));
    }
  }
  return out;
}

const instancesOf = (specs: StudySpec[]): number => specs.reduce((n, s) => n + s.series * s.perSeries, 0);

function pixelHash(file: Buffer): string {
  const inst = readInstance(new BufferSource(file));
  const px = inst.dataset.elements.find((e) => e.tag === 0x7fe00010);
  assert.ok(px, 'Pixel Data present');
  return createHash('sha256').update(inst.dataset.src.slice(px.valueStart, px.end)).digest('hex');
}

async function upload(o: Orthanc, file: Buffer): Promise<void> {
  const res = await fetch(`${o.httpUrl}/instances`, { method: 'POST', body: file });
  assert.equal(res.status, 200, `Orthanc accepts the upload: ${await res.text()}`);
}

async function api(g: GatewayProcess, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${g.apiPort}${p}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

const TERMINAL = ['completed', 'completed_with_errors', 'failed', 'cancelled'];

async function runJob(g: GatewayProcess, body: unknown, timeoutMs = 120_000): Promise<any> {
  const created = await api(g, 'POST', '/api/exports', body);
  assert.equal(created.status, 201, JSON.stringify(created.json));
  return waitFor(`export ${created.json.id} ends`, async () => {
    const s = (await api(g, 'GET', `/api/exports/${created.json.id}`)).json;
    return TERMINAL.includes(s.state) ? s : undefined;
  }, timeoutMs);
}

const auditEntries = (g: GatewayProcess): any[] => fs.readFileSync(g.auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe('research exports with real peers', { skip }, () => {
  let work: string;
  let corpus: PhiCorpus;
  let source: Orthanc;
  let gatewayPort: number;
  const peers: { dispose(): Promise<void> }[] = [];
  const gateways: GatewayProcess[] = [];
  const pseudo = new Pseudonymizer(Buffer.from(SECRET));

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-export-it-'));
    corpus = await generatePhiCorpus(path.join(work, 'corpus'));
    gatewayPort = await freePort();
    source = await startOrthanc({ aet: 'PACS', modalities: { gateway: ['DEIDGW', '127.0.0.1', gatewayPort] } });
    peers.push(source);
    for (const s of STUDIES) for (const f of studyFiles(s)) await upload(source, f);
    for (const f of corpus.files) await upload(source, fs.readFileSync(f));
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.kill().catch(() => undefined)));
    await Promise.all(peers.map((p) => p.dispose()));
    fs.rmSync(work, { recursive: true, force: true });
  });

  async function research(): Promise<Orthanc> {
    const o = await startOrthanc();
    peers.push(o);
    return o;
  }

  function exportConfig(dir: string, dest: Orthanc, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const base = testConfig(dir, { research: { type: 'stow-rs', url: dest.dicomwebUrl } });
    return {
      ...base,
      dimse: { ...(base.dimse as object), port: gatewayPort },
      sources: {
        pacs: { type: 'dicomweb', url: source.dicomwebUrl, pageSize: 2, maxConcurrent: 2, requestsPerSecond: 0 },
        pacsDimse: { type: 'dimse', aeTitle: source.aet, host: '127.0.0.1', port: source.dicomPort },
        pacsGet: { type: 'dimse', aeTitle: source.aet, host: '127.0.0.1', port: source.dicomPort, retrieve: 'c-get' },
      },
      exports: { dir: path.join(dir, 'exports'), maxAttempts: 2, initialDelayMs: 100, maxDelayMs: 300 },
      ...extra,
    };
  }

  async function gateway(name: string, dest: Orthanc, extra: Record<string, unknown> = {}): Promise<GatewayProcess> {
    const dir = path.join(work, name);
    const g = await startGatewayProcess(dir, exportConfig(dir, dest, extra));
    gateways.push(g);
    return g;
  }

  /** What arrived at the research Orthanc, checked: each once, de-identified, pixels as at the source. */
  async function checkDelivered(dest: Orthanc, specs: StudySpec[]): Promise<void> {
    const want = instancesOf(specs);
    const stored = await waitFor(`${want} instances at the research Orthanc`, async () => {
      const list = await dest.qidoInstances();
      return list.length >= want ? list : undefined;
    });
    assert.equal(stored.length, want, 'exactly the instances asked for');
    assert.equal(new Set(stored.map((i) => i.sopInstanceUid)).size, want, 'each instance once');
    const expectedStudies = new Set(specs.map((s) => pseudo.uid(studyUid(s))));
    assert.deepEqual(new Set(stored.map((i) => i.studyUid)), expectedStudies, 'the same new Study UIDs a C-STORE route gives');
    const sourceByNewSop = new Map<string, Buffer>();
    for (const s of specs) for (const f of studyFiles(s)) {
      const inst = readInstance(new BufferSource(f));
      const sop = inst.dataset.elements.find((e) => e.tag === 0x00080018)!;
      sourceByNewSop.set(pseudo.uid(inst.dataset.src.slice(sop.valueStart, sop.end).toString('latin1').replace(/\0+$/, '')), f);
    }
    for (const i of stored) {
      const original = sourceByNewSop.get(i.sopInstanceUid);
      assert.ok(original, `new SOP UID ${i.sopInstanceUid} is the keyed pseudonym of a source instance`);
      const bytes = await dest.wadoInstance(i.studyUid, i.seriesUid, i.sopInstanceUid);
      assert.equal(pixelHash(bytes), pixelHash(original), 'identical Pixel Data');
      const text = bytes.toString('latin1');
      for (const phi of ['EXPORT^PATIENT', 'EXP-PID-', 'ACC-EXP-', ROOT]) assert.ok(!text.includes(phi), `no ${phi} in the output`);
    }
  }

  test('DICOMweb source, by StudyDate range and modality: the matching studies arrive de-identified', async () => {
    const dest = await research();
    const g = await gateway('by-date', dest);
    const s = await runJob(g, { source: 'pacs', query: { studyDate: { from: '20240101', to: '20241231' }, modalitiesInStudy: ['CT'] }, route: 'research' });
    const specs = STUDIES.filter((x) => x.date.startsWith('2024') && x.modality === 'CT');
    assert.equal(s.state, 'completed', JSON.stringify(s));
    assert.deepEqual([s.studies.found, s.studies.done, s.instances.found, s.instances.done, s.instances.failed], [specs.length, specs.length, instancesOf(specs), instancesOf(specs), 0]);
    assert.equal(s.etaSeconds, 0);
    assert.ok(s.bytes > 0);
    await checkDelivered(dest, specs);

    const manifest = (await api(g, 'GET', `/api/exports/${s.id}/manifest`)).json;
    assert.equal(manifest.standard, 'DICOM PS3.15 2026d Annex E');
    assert.equal(manifest.profile, 'pixel-only');
    const rows = manifest.studies.flatMap((st: any) => st.series.flatMap((se: any) => se.instances));
    assert.equal(rows.length, instancesOf(specs));
    for (const r of rows) assert.match(r.pixelSha256, /^[0-9a-f]{64}$/);
    assert.ok(fs.existsSync(path.join(g.dir, 'exports', s.id, 'manifest.json')), 'manifest next to the job record');

    assert.equal(await g.stop(), 0);
    const verify = spawnSync(process.execPath, [CLI, 'audit', 'verify', g.auditFile], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    const audit = auditEntries(g);
    const created = audit.find((e) => e.type === 'export.created');
    assert.deepEqual([created.by, created.source, created.criteria], ['token#1', 'pacs', { studyDate: '20240101-20241231', modalitiesInStudy: 'CT' }]);
    assert.equal(audit.find((e) => e.type === 'export.found').studies, specs.length);
    assert.equal(audit.find((e) => e.type === 'export.finished').instancesDone, instancesOf(specs));
    assert.equal(audit.filter((e) => e.type === 'instance.received' && e.job === s.id).length, 0, 'WADO-RS arrivals are audited by series (export.retrieved)');
    assert.equal(audit.filter((e) => e.type === 'export.retrieved').reduce((n, e) => n + e.instances, 0), instancesOf(specs));
    const raw = fs.readFileSync(g.auditFile, 'utf8');
    for (const phi of ['EXPORT^PATIENT', 'EXP-PID-', 'ACC-EXP-', ROOT]) assert.ok(!raw.includes(phi), `audit holds ${phi}`);
  });

  test('DICOMweb source, by accession list and by study UID list; a query matching nothing ends with zero studies', async () => {
    const dest = await research();
    const g = await gateway('by-list', dest);
    const byAccession = await runJob(g, { source: 'pacs', query: { accessionNumbers: ['ACC-EXP-1', 'ACC-EXP-4', 'NO-SUCH'] }, route: 'research' });
    assert.equal(byAccession.state, 'completed');
    assert.equal(byAccession.studies.found, 2);
    const byUid = await runJob(g, { source: 'pacs', query: { studyUids: [studyUid(STUDIES[2])] }, profile: 'basic', destinations: ['research'] });
    assert.equal(byUid.state, 'completed');
    assert.equal(byUid.profile, 'basic');
    await checkDelivered(dest, [STUDIES[0], STUDIES[3], STUDIES[2]]);
    const none = await runJob(g, { source: 'pacs', query: { accessionNumbers: ['NOTHING-HERE'] }, route: 'research' });
    assert.deepEqual([none.state, none.studies.found, none.instances.found], ['completed', 0, 0]);
    await g.stop();
  });

  test('planted-PHI corpus exported by study UID list: no marker arrives, pixels identical', async () => {
    const dest = await research();
    const g = await gateway('corpus', dest);
    const uids = [...new Set(corpus.instances.map((i) => i.studyInstanceUID))];
    const s = await runJob(g, { source: 'pacs', query: { studyUids: uids }, route: 'research' });
    assert.ok(s.instances.found > 0);
    const stored = await dest.qidoInstances();
    assert.equal(stored.length + s.instances.failed, s.instances.found, JSON.stringify(s));
    assert.deepEqual([s.state, s.instances.found, s.instances.done, s.instances.failed], ['completed', corpus.files.length, corpus.files.length, 0], JSON.stringify(s.errors));
    assert.equal(stored.length, corpus.files.length, 'every corpus instance arrives');
    const sourceByNewSop = new Map(corpus.instances.map((i) => [pseudo.uid(i.sopInstanceUID), corpus.files.find((f) => path.basename(f) === path.basename(i.file))!]));
    for (const i of stored) {
      const bytes = await dest.wadoInstance(i.studyUid, i.seriesUid, i.sopInstanceUid);
      const text = searchableBytes(bytes).toString('latin1');
      const leaked = corpus.markers.filter((m) => text.includes(m));
      assert.deepEqual(leaked, [], `planted markers at the research Orthanc in ${i.sopInstanceUid}`);
      const original = sourceByNewSop.get(i.sopInstanceUid);
      assert.ok(original, 'the new SOP UID is the keyed pseudonym of a corpus instance');
      assert.equal(pixelHash(bytes), pixelHash(fs.readFileSync(original)), 'identical Pixel Data');
    }
    await g.stop();
  });

  test('DIMSE source: C-FIND by accession, C-MOVE to the gateway\'s own SCP', async () => {
    const dest = await research();
    const g = await gateway('dimse', dest);
    const s = await runJob(g, { source: 'pacsDimse', query: { accessionNumbers: ['ACC-EXP-2', 'ACC-EXP-3'] }, route: 'research' });
    assert.equal(s.state, 'completed', JSON.stringify(s));
    await checkDelivered(dest, [STUDIES[1], STUDIES[2]]);
    await g.stop();
    const received = auditEntries(g).filter((e) => e.type === 'instance.received');
    assert.equal(received.filter((e) => e.job === s.id && e.callingAE === source.aet).length, instancesOf([STUDIES[1], STUDIES[2]]));
  });

  test('DIMSE source with C-GET: C-FIND by study date, instances on the same association', async () => {
    const dest = await research();
    const g = await gateway('cget', dest);
    const s = await runJob(g, { source: 'pacsGet', query: { studyDate: { from: '20240601' }, modalitiesInStudy: ['MR'] }, route: 'research' });
    assert.equal(s.state, 'completed', JSON.stringify(s));
    assert.equal(s.studies.found, 1);
    await checkDelivered(dest, [STUDIES[3]]);
    await g.stop();
  });

  test('SIGKILL in the middle of a job: the restarted gateway resumes it, nothing twice', async () => {
    const dest = await research();
    const dir = path.join(work, 'resume');
    const config = exportConfig(dir, dest, { sources: { pacs: { type: 'dicomweb', url: source.dicomwebUrl, maxConcurrent: 1, requestsPerSecond: 4 } } });
    let g = await startGatewayProcess(dir, config);
    gateways.push(g);
    const created = await api(g, 'POST', '/api/exports', { source: 'pacs', query: { studyUids: STUDIES.map(studyUid) }, route: 'research' });
    const id = created.json.id;
    await waitFor('part of the job retrieved', async () => ((await api(g, 'GET', `/api/exports/${id}`)).json.instances.retrieved >= 4 ? true : undefined));
    await g.kill();
    const before = fs.readFileSync(path.join(dir, 'exports', id, 'events.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"spooled"')).length;
    assert.ok(before < instancesOf(STUDIES), `killed mid-job (${before} instances retrieved)`);
    g = await startGatewayProcess(dir, config);
    gateways.push(g);
    const s = await waitFor('resumed job ends', async () => {
      const st = (await api(g, 'GET', `/api/exports/${id}`)).json;
      return TERMINAL.includes(st.state) ? st : undefined;
    });
    assert.equal(s.state, 'completed', JSON.stringify(s));
    assert.equal(s.instances.done, instancesOf(STUDIES));
    await checkDelivered(dest, STUDIES);
    const spooled = fs.readFileSync(path.join(dir, 'exports', id, 'events.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"spooled"'));
    // Re-retrieved at most the instances whose spool commit raced the kill (one per retrieve lane).
    assert.ok(spooled.length <= instancesOf(STUDIES) + 2, `${spooled.length} retrievals for ${instancesOf(STUDIES)} instances`);
    assert.ok(auditEntries(g).some((e) => e.type === 'export.started' && e.job === id && e.resumed === true));
    await g.stop();
  });

  test('source down: retries, then a failed job with a clear error; bad requests get 400/404', async () => {
    const dest = await research();
    const g = await gateway('down', dest, { sources: { pacs: { type: 'dicomweb', url: `http://127.0.0.1:${await freePort()}/dicom-web` } } });
    const s = await runJob(g, { source: 'pacs', query: { patientIds: ['EXP-PID-1'] }, route: 'research' });
    assert.equal(s.state, 'failed');
    assert.match(s.error, /QUERY_FAILED.*ECONNREFUSED|ECONNREFUSED/);
    assert.ok(!s.error.includes('EXP-PID-1'), 'the error holds no query value');
    const events = fs.readFileSync(path.join(g.dir, 'exports', s.id, 'events.jsonl'), 'utf8');
    assert.match(events, /"e":"retry"/, 'retried before failing');
    assert.equal((await api(g, 'POST', '/api/exports', { source: 'nope', query: { patientIds: ['X'] }, route: 'research' })).status, 400);
    const bad = await api(g, 'POST', '/api/exports', { source: 'pacs', query: {}, route: 'research' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /query: a query needs at least one criterion/);
    assert.equal((await api(g, 'GET', '/api/exports/exp-none')).status, 404);
    const unauth = await fetch(`http://127.0.0.1:${g.apiPort}/api/exports`, { method: 'POST' });
    assert.equal(unauth.status, 401);
    await g.stop();
  });

  test('DELETE cancels a running job: it stops retrieving, the cancel is audited', async () => {
    const dest = await research();
    const g = await gateway('cancel', dest, { sources: { pacs: { type: 'dicomweb', url: source.dicomwebUrl, maxConcurrent: 1, requestsPerSecond: 2 } } });
    const created = await api(g, 'POST', '/api/exports', { source: 'pacs', query: { studyUids: STUDIES.map(studyUid) }, route: 'research' });
    await waitFor('the job runs', async () => ((await api(g, 'GET', `/api/exports/${created.json.id}`)).json.state === 'running' ? true : undefined));
    const cancelled = await api(g, 'DELETE', `/api/exports/${created.json.id}`);
    assert.deepEqual([cancelled.status, cancelled.json.state], [202, 'cancelled']);
    await new Promise((r) => setTimeout(r, 1500));
    const s = (await api(g, 'GET', `/api/exports/${created.json.id}`)).json;
    assert.equal(s.state, 'cancelled');
    assert.ok(s.instances.retrieved < instancesOf(STUDIES), `stopped early (${s.instances.retrieved} retrieved)`);
    const list = (await api(g, 'GET', '/api/exports')).json;
    assert.ok(list.some((j: any) => j.id === created.json.id));
    await g.stop();
    assert.ok(auditEntries(g).some((e) => e.type === 'export.cancelled' && e.job === created.json.id && e.by === 'token#1'));
  });

  test('deid-gateway export in the foreground: progress on stderr, summary and exit code', async () => {
    const dest = await research();
    const dir = path.join(work, 'cli');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'gateway.yaml');
    fs.writeFileSync(file, stringify(exportConfig(dir, dest)));
    const child = spawn(process.execPath, [CLI, 'export', '--config', file, '--source', 'pacs', '--accession', 'ACC-EXP-2', '--route', 'research'], {
      cwd: dir, env: { ...process.env, DEID_SECRET: SECRET }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 0, out + err);
    assert.match(out, /completed: 1 studies, 4\/4 instances done, 0 failed/);
    assert.match(err, /export job exp-\S+ created/);
    await checkDelivered(dest, [STUDIES[1]]);
  });
});
