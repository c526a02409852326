import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BufferSource } from '../../src/dicom/byte-source';
import { readInstance } from '../../src/dicom/part10';
import { el, makeImage } from '../support/dicom-builder';
import { GatewayProcess, startGatewayProcess, testConfig } from '../support/gateway-process';
import { hasOrthanc, Orthanc, startOrthanc } from '../support/orthanc';
import { generatePhiCorpus, PhiCorpus, searchableBytes } from '../support/phi-corpus';
import { storescuAsync, waitFor } from '../support/async-peers';
import { repoRoot } from '../support/tools';

/**
 * The gateway as deployed: real DCMTK storescu in, the real gateway process, a real Orthanc
 * with its DICOMweb plugin out, all on loopback, started and stopped by the tests.
 */
const CLI = path.join(repoRoot(), 'dist/src/cli/main.js');
const skip = hasOrthanc() ? false : 'Orthanc with the DICOMweb plugin is not installed (scripts/install-test-deps.sh)';

/** Pixel Data value of a Part 10 file, by the engine's reader (the bytes, not decoded). */
function pixelHash(file: Buffer): string {
  const inst = readInstance(new BufferSource(file));
  const px = inst.dataset.elements.find((e) => e.tag === 0x7fe00010);
  assert.ok(px, 'Pixel Data present');
  return createHash('sha256').update(inst.dataset.src.slice(px.valueStart, px.end)).digest('hex');
}


const storescu = (files: string[], port: number, callingAE = 'STORESCU') => storescuAsync(files, port, callingAE);

/** Distinct single-frame CT instances with a known InstanceNumber each. */
function makeSeries(dir: string, count: number, tag: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return Array.from({ length: count }, (_, i) => {
    const file = path.join(dir, `${tag}-${i}.dcm`);
    fs.writeFileSync(file, makeImage({
      modality: 'CT', rows: 64, cols: 64,
      extra: [el('SOPInstanceUID', `1.2.826.0.1.3680043.9.7777.${tag.length}.${i + 1}`), el('InstanceNumber', String(i + 1)), el('PatientName', 'Integration^Test'), el('PatientID', `IT-${tag}`)],
    }));
    return file;
  });
}

describe('gateway with real peers', { skip }, () => {
  let work: string;
  let corpus: PhiCorpus;
  const peers: { dispose(): Promise<void> }[] = [];
  const gateways: GatewayProcess[] = [];

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-gw-it-'));
    corpus = await generatePhiCorpus(path.join(work, 'corpus'));
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.kill().catch(() => undefined)));
    await Promise.all(peers.map((p) => p.dispose()));
    fs.rmSync(work, { recursive: true, force: true });
  });

  async function orthanc(): Promise<Orthanc> {
    const o = await startOrthanc();
    peers.push(o);
    return o;
  }
  async function gateway(name: string, destinations: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<GatewayProcess> {
    const dir = path.join(work, name);
    const g = await startGatewayProcess(dir, testConfig(dir, destinations, extra));
    gateways.push(g);
    return g;
  }

  test('storescu -> gateway -> STOW-RS -> Orthanc: every instance once, no planted PHI, identical pixels', async () => {
    const o = await orthanc();
    const g = await gateway('stow', { research: { type: 'stow-rs', url: o.dicomwebUrl } });
    const sent = await storescu(corpus.files, g.dimsePort);
    assert.equal(sent.status, 0, sent.output);
    const stored = await waitFor('all instances at Orthanc', async () => {
      const list = await o.qidoInstances();
      return list.length === corpus.files.length ? list : undefined;
    });
    assert.equal(new Set(stored.map((i) => i.sopInstanceUid)).size, corpus.files.length, 'each instance once');
    const sourcePixels = corpus.files.map((f) => pixelHash(fs.readFileSync(f))).sort();
    const outputPixels: string[] = [];
    for (const i of stored) {
      const bytes = await o.wadoInstance(i.studyUid, i.seriesUid, i.sopInstanceUid);
      const text = searchableBytes(bytes).toString('latin1');
      const leaked = corpus.markers.filter((m) => text.includes(m));
      assert.deepEqual(leaked, [], `planted markers at Orthanc in ${i.sopInstanceUid}`);
      assert.match(i.sopInstanceUid, /^2\.25\.\d+$/);
      outputPixels.push(pixelHash(bytes));
    }
    assert.deepEqual(outputPixels.sort(), sourcePixels, 'Pixel Data identical to the sources');
    assert.equal(await g.stop(), 0);
    const verify = spawnSync(process.execPath, [CLI, 'audit', 'verify', g.auditFile], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    const audit = fs.readFileSync(g.auditFile, 'utf8');
    for (const m of corpus.markers) assert.ok(!audit.includes(m), `audit holds a marker ${m}`);
    const deidentified = audit.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.type === 'instance.deidentified');
    assert.equal(deidentified.length, corpus.files.length);
    for (const e of deidentified) assert.equal(e.pixelSha256After, e.pixelSha256Before);
  });

  test('C-STORE destination: Orthanc receives the de-identified bytes', async () => {
    const o = await orthanc();
    const g = await gateway('cstore', { archive: { type: 'c-store', aeTitle: o.aet, host: '127.0.0.1', port: o.dicomPort } });
    const files = makeSeries(path.join(work, 'cstore-in'), 5, 'cstore');
    assert.equal((await storescu(files, g.dimsePort)).status, 0);
    const stored = await waitFor('5 instances', async () => {
      const list = await o.qidoInstances();
      return list.length === 5 ? list : undefined;
    });
    const source = pixelHash(fs.readFileSync(files[0]));
    for (const i of stored) {
      const file = await o.storedFile(i.sopInstanceUid);
      assert.equal(pixelHash(file), source, 'Pixel Data identical');
      assert.ok(!file.includes(Buffer.from('Integration^Test')) && !file.includes(Buffer.from('IT-cstore')), 'no PHI');
    }
    if (process.platform === 'linux') {
      // spool.workerNice (default 10): the de-identification workers and V8's boot threads below
      // the main thread (test/pipeline/thread-priority.test.ts checks which threads in detail).
      const nice = (tid: string): number => Number(fs.readFileSync(`/proc/${g.pid}/task/${tid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[16]);
      const main = nice(String(g.pid));
      const lowered = fs.readdirSync(`/proc/${g.pid}/task`).filter((t) => nice(t) === Math.min(19, main + 10));
      assert.ok(lowered.length >= 2 + 4, `2 workers and V8's platform threads run 10 steps below the main thread: ${lowered.length}`);
    }
    await g.stop();
  });

  test('Orthanc down during a transfer, then up: everything is delivered', async () => {
    const o = await orthanc();
    const g = await gateway('outage', { research: { type: 'stow-rs', url: o.dicomwebUrl } });
    await o.stop();
    const files = makeSeries(path.join(work, 'outage-in'), 12, 'outage');
    assert.equal((await storescu(files, g.dimsePort)).status, 0, 'the gateway accepts while the destination is down');
    await new Promise((r) => setTimeout(r, 1500));
    await o.restart();
    await waitFor('12 instances after the outage', async () => ((await o.qidoInstances()).length === 12 ? true : undefined));
    const audit = fs.readFileSync(g.auditFile, 'utf8');
    assert.match(audit, /"type":"instance.retry"/, 'retries were audited');
    await g.stop();
  });

  test('graceful stop while the destination is down: prompt exit, nothing lost, delivered after restart', async () => {
    const o = await orthanc();
    const dir = path.join(work, 'graceful');
    const config = testConfig(dir, { research: { type: 'stow-rs', url: o.dicomwebUrl } });
    let g = await startGatewayProcess(dir, config);
    gateways.push(g);
    await o.stop();
    assert.equal((await storescu(makeSeries(path.join(work, 'graceful-in'), 6, 'graceful'), g.dimsePort)).status, 0);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    assert.equal(await g.stop(), 0);
    assert.ok(Date.now() - t0 < 10_000, 'the stop does not wait for the retry schedule');
    assert.doesNotMatch(fs.readFileSync(g.auditFile, 'utf8'), /"type":"instance.quarantined"/, 'a stop quarantines nothing');
    await o.restart();
    g = await startGatewayProcess(dir, config);
    gateways.push(g);
    await waitFor('6 instances after the restart', async () => ((await o.qidoInstances()).length === 6 ? true : undefined));
    await g.stop();
  });

  test('gateway SIGKILLed in the middle of an association: every Success delivered after restart, none twice', async () => {
    const o = await orthanc();
    const dir = path.join(work, 'crash');
    const config = testConfig(dir, { research: { type: 'stow-rs', url: o.dicomwebUrl } });
    const files = makeSeries(path.join(work, 'crash-in'), 150, 'crash');
    let g = await startGatewayProcess(dir, config);
    gateways.push(g);
    const transfer = storescu(files, g.dimsePort);
    await waitFor('a few instances received', async () => (fs.existsSync(g.auditFile) && (fs.readFileSync(g.auditFile, 'utf8').match(/instance.received/g)?.length ?? 0) >= 20 ? true : undefined), 30_000);
    await g.kill();
    const sent = await transfer;
    const successes = (sent.output.match(/Received Store Response \(Success\)/g) ?? []).length;
    assert.ok(successes > 0 && successes < files.length, `the kill landed mid-association (${successes} successes)`);
    g = await startGatewayProcess(dir, config);
    gateways.push(g);
    const stored = await waitFor(`${successes}+ instances`, async () => {
      const list = await o.qidoInstances();
      return list.length >= successes ? list : undefined;
    });
    // Instances are sent in file order: the first `successes` ones were acknowledged.
    const numbers = stored.map((i) => Number((i.json['00200013']?.Value ?? [])[0]));
    for (let n = 1; n <= successes; n++) assert.ok(numbers.includes(n), `acknowledged instance ${n} delivered`);
    assert.equal(new Set(numbers).size, numbers.length, 'no instance twice');
    await g.stop();
  });

  test('malformed instance: 0xC000, quarantine, audit; the association goes on', async () => {
    const dir = path.join(work, 'malformed');
    const g = await gateway('malformed', { out: { type: 'folder', path: path.join(dir, 'out') } });
    // 40 nested sequences: DCMTK sends it, the gateway refuses it (its limit is 32 levels).
    let nested = [el('CodeValue', 'X')];
    for (let i = 0; i < 40; i++) nested = [{ tag: 0x00400260, vr: 'SQ', value: [{ elements: nested }] }];
    const bad = path.join(work, 'malformed-in', 'deep.dcm');
    const good = makeSeries(path.join(work, 'malformed-in'), 2, 'malformed');
    fs.writeFileSync(bad, makeImage({ extra: nested }));
    const r = await storescu([good[0], bad, good[1]], g.dimsePort);
    assert.match(r.output, /Received Store Response \(Error: CannotUnderstand\)/, r.output);
    assert.equal((r.output.match(/Received Store Response \(Success\)/g) ?? []).length, 2, 'the files after it are stored');
    const list = await waitFor('quarantine entry', async () => {
      const res = await fetch(`http://127.0.0.1:${g.apiPort}/api/quarantine`, { headers: { authorization: 'Bearer test-token-123456' } });
      const items = (await res.json()) as { code: string }[];
      return items.length ? items : undefined;
    });
    assert.equal(list[0].code, 'NESTING_TOO_DEEP');
    assert.match(fs.readFileSync(g.auditFile, 'utf8'), /"type":"instance.quarantined"/);
    // The CLI goes through the same API: list, then purge.
    const env = { ...process.env, DEID_API_TOKEN: 'test-token-123456' };
    const api = ['--api', `http://127.0.0.1:${g.apiPort}`];
    const listed = spawnSync(process.execPath, [CLI, 'quarantine', 'list', ...api], { encoding: 'utf8', env });
    assert.match(listed.stdout, /\tingest\tNESTING_TOO_DEEP\t/);
    const id = listed.stdout.split('\t')[0];
    assert.equal(spawnSync(process.execPath, [CLI, 'quarantine', 'purge', id, ...api], { encoding: 'utf8', env }).status, 0);
    assert.match(spawnSync(process.execPath, [CLI, 'quarantine', 'list', ...api], { encoding: 'utf8', env }).stdout, /quarantine is empty/);
    assert.match(fs.readFileSync(g.auditFile, 'utf8'), /"type":"quarantine.purged"/);
    await g.stop();
  });

  test('spool over its high-water mark: 0xA700', async () => {
    const dir = path.join(work, 'full');
    const g = await gateway('full', { out: { type: 'folder', path: path.join(dir, 'out') } }, { spool: { dir: path.join(dir, 'spool'), highWaterPercent: 1 } });
    const r = await storescu(makeSeries(path.join(work, 'full-in'), 1, 'full'), g.dimsePort);
    assert.match(r.output, /Received Store Response \(Refused: OutOfResources\)/, r.output);
    await g.stop();
  });

  test('unknown calling AE: association rejected and audited', async () => {
    const dir = path.join(work, 'reject');
    const g = await gateway('reject', { out: { type: 'folder', path: path.join(dir, 'out') } });
    const r = await storescu(makeSeries(path.join(work, 'reject-in'), 1, 'reject'), g.dimsePort, 'INTRUDER');
    assert.notEqual(r.status, 0);
    assert.match(r.output, /Association Rejected/i);
    await g.stop();
    assert.match(fs.readFileSync(g.auditFile, 'utf8'), /"type":"association.rejected".*"callingAE":"INTRUDER"/);
  });

  test('STOW-RS receive: a multipart POST enters the same spool, routes and destinations', async () => {
    const dir = path.join(work, 'stowin');
    const g = await gateway('stowin', { out: { type: 'folder', path: path.join(dir, 'out') } });
    const files = makeSeries(path.join(work, 'stowin-in'), 3, 'stowin');
    const boundary = 'deid-boundary-42';
    const body = Buffer.concat([
      ...files.flatMap((f) => [Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), fs.readFileSync(f), Buffer.from('\r\n')]),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    const url = `http://127.0.0.1:${g.apiPort}/dicomweb/studies`;
    const headers = { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}` };
    assert.equal((await fetch(url, { method: 'POST', headers, body })).status, 401, 'the token is required');
    const res = await fetch(url, { method: 'POST', headers: { ...headers, authorization: 'Bearer test-token-123456' }, body });
    assert.equal(res.status, 200);
    const json = (await res.json()) as Record<string, { Value?: unknown[] }>;
    assert.equal(json['00081199']?.Value?.length, 3, 'ReferencedSOPSequence lists the three instances');
    const out = path.join(dir, 'out');
    const written = await waitFor('3 de-identified files', async () => {
      const found = fs.existsSync(out) ? fs.readdirSync(out, { recursive: true }).filter((f) => String(f).endsWith('.dcm')) : [];
      return found.length === 3 ? found : undefined;
    });
    for (const f of written) assert.ok(!fs.readFileSync(path.join(out, String(f))).includes(Buffer.from('Integration^Test')));
    await g.stop();
  });

  test('an edited audit file fails `audit verify` at that line', async () => {
    const dir = path.join(work, 'stow');
    const file = path.join(dir, 'audit.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const edited = lines[4].replace(/"time":"[^"]+"/, '"time":"2000-01-01T00:00:00.000Z"');
    assert.notEqual(edited, lines[4]);
    lines[4] = edited;
    fs.writeFileSync(file, lines.join('\n'));
    const r = spawnSync(process.execPath, [CLI, 'audit', 'verify', file], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /broken at .*audit\.jsonl:5:/);
  });
});
