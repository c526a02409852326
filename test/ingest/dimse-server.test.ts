/**
 * The DIMSE C-ECHO / C-STORE SCP against real peers: DCMTK echoscu/storescu (loopback
 * only, TCP_NODELAY=1, every run bounded), dcmjs-dimse's Client sending verbatim bytes, and a
 * raw PDU writer for what real SCUs never do.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { log as dimseLog } from 'dcmjs-dimse';
import { Config, DimseIngestSchema } from '../../src/config/schema';
import { IMPLEMENTATION_CLASS_UID } from '../../src/dicom/meta';
import { startDimseServer } from '../../src/ingest/dimse/server';
import { ContextResult, DimseStatus, RejectReason, RejectResult, RejectSource, VERIFICATION_SOP_CLASS } from '../../src/ingest/dimse/statuses';
import type { IngestEvent } from '../../src/ingest/dimse/types';
import { el, makeImage, SOP_CLASS, TS } from '../support/dicom-builder';
import { hasTool, repoRoot, run } from '../support/tools';
import { clientStore, datasetOffset, DirSink, itemOf, readMeta, runTool, tryConnect, waitFor } from './dimse-support';
import { associateRq, cStoreRq, errorCommentOf, parseAccept, pData, RawScu, rejectOf, releaseRq, startWireTap, statusOf } from './raw-scu';

dimseLog.setLevel('silent');

const HOST = '127.0.0.1';
const AE = 'DEIDGW';
const SCU = 'SCU';
const SAMPLES = path.join(repoRoot(), 'test', 'fixtures', 'samples');
const hasDcmtk = hasTool('echoscu') && hasTool('storescu') && hasTool('dcmdump');
const NO_DCMTK = hasDcmtk ? false : 'DCMTK (echoscu/storescu/dcmdump) not installed: run scripts/install-test-deps.sh';

function config(over: Record<string, unknown> = {}): Config['dimse'] {
  const cfg = DimseIngestSchema.parse({ aeTitle: AE, host: HOST, callers: [{ aeTitle: SCU, hosts: ['127.0.0.1'] }], maxPduLength: 16384, ...over });
  return { ...cfg, port: 0 }; // the schema wants 1-65535; 0 = any free port, for tests
}

interface Harness {
  port: number;
  sink: DirSink;
  events: IngestEvent[];
  dir: string;
  server: Awaited<ReturnType<typeof startDimseServer>>;
}

async function withServer(over: Record<string, unknown>, fn: (h: Harness) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dimse-test-'));
  const sink = new DirSink(path.join(dir, 'spool'));
  const events: IngestEvent[] = [];
  const server = await startDimseServer(config(over), sink, (e) => events.push(e));
  try {
    await fn({ port: server.port, sink, events, dir, server });
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const echoscu = (port: number, aet = SCU, aec = AE, extra: string[] = []) =>
  runTool('echoscu', [...extra, '-aet', aet, '-aec', aec, HOST, String(port)], 30_000);


/** A makeImage file with a unique SOP Instance UID and a private block. */
function image(i: number, ts: string): Buffer {
  return makeImage({
    modality: i % 2 ? 'CT' : 'MR', ts, rows: 8 + (i % 7), cols: 8 + 2 * (i % 5), bits: i % 3 ? 16 : 8, frames: 1 + (i % 3),
    extra: [
      el('SOPInstanceUID', `2.25.${987654321000 + i}`),
      { tag: 0x00090010, vr: 'LO', value: 'DEIDGW TEST' },
      { tag: 0x00091001, vr: 'LO', value: `PRIVATE VALUE ${i}` },
    ],
  });
}

/** Samples with SOP class and instance in their meta group (the three bare data set fragments have none). */
function sampleFiles(): string[] {
  return fs.readdirSync(SAMPLES).filter((f) => f.endsWith('.dcm')).sort().map((f) => path.join(SAMPLES, f))
    .filter((f) => {
      const m = readMeta(fs.readFileSync(f));
      return m.sopClass !== '' && m.sopInstance !== '';
    });
}

/** storescu presentation-context config: one context per (SOP class, transfer syntax) of the files, that syntax only. */
function storescuConfig(files: string[], file: string): void {
  const syntaxes = new Map<string, string>();
  const contexts: string[] = [];
  for (const f of files) {
    const m = readMeta(fs.readFileSync(f));
    if (!syntaxes.has(m.ts)) syntaxes.set(m.ts, `TS${syntaxes.size}`);
    const ctx = `${m.sopClass}\\${syntaxes.get(m.ts)}`;
    if (!contexts.includes(ctx)) contexts.push(ctx);
  }
  assert.ok(contexts.length <= 128, 'at most 128 presentation contexts');
  const lines = ['[[TransferSyntaxes]]'];
  for (const [ts, name] of syntaxes) lines.push(`[${name}]`, `TransferSyntax1 = ${ts}`);
  lines.push('[[PresentationContexts]]', '[Contexts]', ...contexts.map((c, i) => `PresentationContext${i + 1} = ${c}`));
  lines.push('[[Profiles]]', '[Exact]', 'PresentationContexts = Contexts');
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

/** SOPClassUID / SOPInstanceUID of the data set, as DCMTK reads them. */
function datasetUids(file: string): { sopClass: string; sopInstance: string } {
  const out = run('dcmdump', ['-q', '-Un', '+P', '0008,0016', '+P', '0008,0018', file]).stdout;
  const values = [...out.matchAll(/\[([0-9.]*)\]/g)].map((m) => m[1]);
  return { sopClass: values[0] ?? '', sopInstance: values[1] ?? '' };
}


describe('DIMSE ingest server', { concurrency: false }, () => {
  let corpus: string;
  before(() => {
    corpus = fs.mkdtempSync(path.join(os.tmpdir(), 'dimse-corpus-'));
  });
  after(() => fs.rmSync(corpus, { recursive: true, force: true }));

  it('C-ECHO with echoscu; TCP_NODELAY on the accepted socket; accepted/closed bookkeeping', { skip: NO_DCMTK }, async () => {
    const calls: number[] = [];
    const original = net.Socket.prototype.setNoDelay;
    net.Socket.prototype.setNoDelay = function (this: net.Socket, noDelay?: boolean) {
      if (noDelay !== false) calls.push(this.localPort ?? -1);
      return original.call(this, noDelay);
    };
    try {
      await withServer({}, async ({ port, events, server }) => {
        const r = await echoscu(port);
        assert.equal(r.status, 0, r.stderr);
        assert.ok(calls.includes(port), 'setNoDelay(true) on the accepted socket');
        assert.deepEqual(events, [{ type: 'association.accepted', callingAE: SCU, calledAE: AE, peer: '127.0.0.1' }]);
        await waitFor(() => server.activeAssociations() === 0, 5000, 'association count back to 0');
      });
    } finally {
      net.Socket.prototype.setNoDelay = original;
    }
  });

  it('A-ASSOCIATE-AC: our implementation UID and max PDU; contexts accepted/rejected per policy', async () => {
    await withServer({ maxPduLength: 32768 }, async ({ port }) => {
      const scu = await RawScu.connect(port);
      scu.send(associateRq(SCU, AE, [
        { id: 1, abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: [TS.implicitLE] },
        { id: 3, abstractSyntax: SOP_CLASS.ctImage, transferSyntaxes: [TS.jpegBaseline, TS.explicitLE] },
        { id: 5, abstractSyntax: '1.2.840.10008.5.1.4.1.2.2.1', transferSyntaxes: [TS.implicitLE] },
      ]));
      const ac = await scu.next();
      assert.equal(ac?.type, 0x02, 'A-ASSOCIATE-AC');
      const info = parseAccept(ac!);
      assert.equal(info.maxPduLength, 32768);
      assert.equal(info.implementationClassUid, IMPLEMENTATION_CLASS_UID);
      assert.deepEqual(info.contexts.get(1), { result: ContextResult.Accept, transferSyntax: TS.implicitLE });
      assert.deepEqual(info.contexts.get(3), { result: ContextResult.Accept, transferSyntax: TS.jpegBaseline }, 'first proposed wins');
      assert.equal(info.contexts.get(5)?.result, ContextResult.AbstractSyntaxNotSupported);
      scu.send(releaseRq());
      assert.equal((await scu.next())?.type, 0x06, 'A-RELEASE-RP');
      scu.destroy();
    });
  });

  it('storescu: ~60 files (generated + real samples, compressed included) in one association, all stored, bytes as sent', { skip: NO_DCMTK }, async () => {
    const syntaxes = [TS.explicitLE, TS.implicitLE, TS.explicitBE, TS.rleLossless, TS.deflatedLE];
    const generated: string[] = [];
    for (let i = 0; i < 40; i++) {
      const f = path.join(corpus, `gen${String(i).padStart(2, '0')}.dcm`);
      fs.writeFileSync(f, image(i, syntaxes[i % syntaxes.length]));
      generated.push(f);
    }
    // storescu cannot read the truncated sample at all (it is the 0xC000 case of the Client test),
    // and refuses data set fragments without SOP Class/Instance UID in the data set.
    const notForStorescu = ['MR_truncated.dcm', 'UN_sequence.dcm', 'priv_SQ.dcm'];
    const samples = sampleFiles().filter((f) => !notForStorescu.some((n) => f.endsWith(n)));
    const files = [...generated, ...samples];
    const compressed = samples.filter((f) => ![TS.explicitLE, TS.implicitLE, TS.explicitBE].includes(readMeta(fs.readFileSync(f)).ts as never));
    assert.ok(compressed.length >= 10, 'compressed samples are part of the run');
    const cfgFile = path.join(corpus, 'storescu.cfg');
    storescuConfig(files, cfgFile);
    const args = ['-xf', cfgFile, 'Exact', '-aet', SCU, '-aec', AE, HOST];

    await withServer({}, async ({ port, sink, events }) => {
      const tap = await startWireTap(port);
      const started = Date.now();
      const r = await runTool('storescu', [...args, String(tap.port), ...files], 120_000);
      const elapsed = Date.now() - started;
      await tap.close();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(sink.stored.length, files.length, `stored ${sink.stored.length} of ${files.length}; quarantined: ${JSON.stringify(sink.quarantined.map((q) => q.code))}`);
      assert.equal(sink.quarantined.length, 0);
      assert.deepEqual(sink.leftovers(), []);
      assert.equal(events.filter((e) => e.type === 'association.accepted').length, 1, 'one association');
      const received = events.filter((e): e is Extract<IngestEvent, { type: 'instance.received' }> => e.type === 'instance.received');
      assert.equal(received.length, files.length);
      assert.ok(elapsed < 60_000, `took ${elapsed} ms`);

      // storescu sends in command-line order and waits for each response: stored[i] is files[i].
      sink.stored.forEach((s, i) => {
        const src = readMeta(fs.readFileSync(files[i]));
        const out = fs.readFileSync(s.file);
        const meta = readMeta(out);
        assert.equal(meta.datasetStart, s.prefix.length);
        assert.equal(meta.ts, src.ts, `${files[i]}: meta transfer syntax`);
        // From the C-STORE request, i.e. from the data set (pydicom__rtdose.dcm's own meta disagrees).
        const uids = datasetUids(files[i]);
        assert.equal(meta.sopClass, uids.sopClass, `${files[i]}: MediaStorageSOPClassUID`);
        assert.equal(meta.sopInstance, uids.sopInstance, `${files[i]}: MediaStorageSOPInstanceUID`);
        assert.equal(received[i].spoolId, s.id);
        assert.equal(received[i].bytes, out.length - meta.datasetStart);
        assert.deepEqual(s.meta, { ...s.meta, source: 'dimse', callingAE: SCU, calledAE: AE, peer: '127.0.0.1' });
      });
      // DCMTK re-encodes what it reads (re-deflates, drops trailing padding, trims values): what
      // our files hold must equal what storescu put on the wire...
      const wire = tap.datasets();
      assert.equal(wire.length, files.length);
      sink.stored.forEach((s, i) => {
        assert.ok(fs.readFileSync(s.file).subarray(s.prefix.length).equals(wire[i]), `${files[i]}: stored bytes differ from the wire`);
      });
      // ... and for the generated non-deflated files, that is exactly the source's data set,
      // private block included.
      generated.forEach((f, i) => {
        if (readMeta(fs.readFileSync(f)).ts === TS.deflatedLE) return;
        const src = fs.readFileSync(f);
        const out = fs.readFileSync(sink.stored[i].file);
        assert.ok(src.subarray(datasetOffset(src)).equals(out.subarray(sink.stored[i].prefix.length)), `${f}: data set bytes differ`);
        assert.ok(out.includes(Buffer.from(`PRIVATE VALUE ${i}`)), 'private tag kept');
      });

    });
  });

  it('verbatim sender (dcmjs-dimse Client, raw bytes): every sample byte-identical; the truncated one 0xC000 and the association goes on', async () => {
    const files = sampleFiles();
    const truncated = files.findIndex((f) => f.endsWith('MR_truncated.dcm'));
    assert.ok(truncated > 0 && truncated < files.length - 1, 'the truncated sample is in the middle');
    const buffers = files.map((f) => fs.readFileSync(f));
    await withServer({}, async ({ port, sink, events }) => {
      const r = await clientStore(port, SCU, AE, buffers.map(itemOf));
      assert.deepEqual(r.networkErrors, []);
      const expected = files.map((_, i) => (i === truncated ? DimseStatus.CannotUnderstand : DimseStatus.Success));
      assert.deepEqual(r.statuses, expected);
      assert.equal(sink.stored.length, files.length - 1);
      assert.equal(sink.quarantined.length, 1);
      assert.equal(sink.quarantined[0].code, 'TRUNCATED');
      const q = events.find((e) => e.type === 'instance.quarantined');
      assert.deepEqual(q, { type: 'instance.quarantined', spoolId: sink.quarantined[0].id, stage: 'ingest', code: 'TRUNCATED', reason: sink.quarantined[0].reason });
      const order = files.filter((_, i) => i !== truncated);
      sink.stored.forEach((s, i) => {
        const src = fs.readFileSync(order[i]);
        const out = fs.readFileSync(s.file);
        assert.ok(out.subarray(s.prefix.length).equals(src.subarray(datasetOffset(src))), `${order[i]}: data set bytes differ`);
      });
      // The quarantined file holds the received bytes too.
      const tsrc = buffers[truncated];
      const tout = fs.readFileSync(sink.quarantined[0].file);
      assert.ok(tout.subarray(sink.quarantined[0].prefix.length).equals(tsrc.subarray(datasetOffset(tsrc))));
      // Private tags: the GE CT keeps its private creators and values.
      const ct = sink.stored[order.findIndex((f) => f.endsWith('CT_small.dcm'))];
      assert.ok(fs.readFileSync(ct.file).includes(Buffer.from('GEMS_')), 'GE private creator kept');
    });
  });

  it('Success only after commit() resolved; a quarantined instance gets 0xC000 with the code in Error Comment', async () => {
    await withServer({}, async ({ port, sink, events }) => {
      const scu = await RawScu.connect(port);
      scu.send(associateRq(SCU, AE, [{ id: 1, abstractSyntax: SOP_CLASS.mrImage, transferSyntaxes: [TS.explicitLE] }]));
      assert.equal((await scu.next())?.type, 0x02);
      let open!: () => void;
      sink.gate = new Promise<void>((resolve) => (open = resolve));
      const m = itemOf(image(650, TS.explicitLE));
      scu.send(pData(1, cStoreRq(1, m.sopClass, m.sopInstance), true, true));
      // The data set in several PDVs, as a real SCU splits it.
      for (let off = 0; off < m.dataset.length; off += 1000) {
        scu.send(pData(1, m.dataset.subarray(off, off + 1000), false, off + 1000 >= m.dataset.length));
      }
      await assert.rejects(scu.next(300), /no PDU within timeout/, 'no response while the commit is pending');
      assert.equal(events.filter((e) => e.type === 'instance.received').length, 0);
      sink.gate = undefined;
      open();
      const rsp = (await scu.next())!;
      assert.equal(statusOf(rsp), DimseStatus.Success);
      assert.equal(errorCommentOf(rsp), undefined);
      assert.equal(events.filter((e) => e.type === 'instance.received').length, 1);

      const bad = m.dataset.subarray(0, m.dataset.length - 10);
      scu.send(pData(1, cStoreRq(2, m.sopClass, '2.25.1'), true, true));
      scu.send(pData(1, bad, false, true));
      const rsp2 = (await scu.next())!;
      assert.equal(statusOf(rsp2), DimseStatus.CannotUnderstand);
      assert.equal(errorCommentOf(rsp2), 'cannot understand, quarantined (TRUNCATED)');
      scu.send(releaseRq());
      assert.equal((await scu.next())?.type, 0x06);
      scu.destroy();
    });
  });

  it('a crafted malformed instance between two good ones: 0xC000, then Success', async () => {
    const good1 = image(100, TS.explicitLE);
    const good2 = image(101, TS.implicitLE);
    const full = image(102, TS.explicitLE);
    const bad = full.subarray(0, full.length - 37); // cut inside Pixel Data
    await withServer({}, async ({ port, sink }) => {
      const r = await clientStore(port, SCU, AE, [good1, bad, good2].map(itemOf));
      assert.deepEqual(r.statuses, [DimseStatus.Success, DimseStatus.CannotUnderstand, DimseStatus.Success]);
      assert.equal(sink.stored.length, 2);
      assert.equal(sink.quarantined.length, 1);
    });
  });

  it('rejects a wrong called AE, an unknown calling AE, and a known AE from a disallowed address', { skip: NO_DCMTK }, async () => {
    await withServer({ callers: [{ aeTitle: SCU, hosts: ['127.0.0.1'] }, { aeTitle: 'FARAWAY', hosts: ['10.0.0.0/8', 'fd00::/8'] }] }, async ({ port, events, sink }) => {
      const wrongCalled = await echoscu(port, SCU, 'NOT_US');
      assert.notEqual(wrongCalled.status, 0);
      assert.match(wrongCalled.stderr, /Called AE Title Not Recognized/i);
      const unknown = await echoscu(port, 'INTRUDER');
      assert.notEqual(unknown.status, 0);
      assert.match(unknown.stderr, /Calling AE Title Not Recognized/i);
      const faraway = await echoscu(port, 'FARAWAY');
      assert.notEqual(faraway.status, 0);
      assert.match(faraway.stderr, /Calling AE Title Not Recognized/i);
      assert.deepEqual(events, [
        { type: 'association.rejected', callingAE: SCU, calledAE: 'NOT_US', peer: '127.0.0.1', reason: 'called AE title not recognized' },
        { type: 'association.rejected', callingAE: 'INTRUDER', calledAE: AE, peer: '127.0.0.1', reason: 'calling AE title not recognized' },
        { type: 'association.rejected', callingAE: 'FARAWAY', calledAE: AE, peer: '127.0.0.1', reason: 'calling AE title not allowed from this address' },
      ]);
      // The exact A-ASSOCIATE-RJ fields.
      const scu = await RawScu.connect(port);
      scu.send(associateRq('FARAWAY', AE, [{ id: 1, abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: [TS.implicitLE] }]));
      const rj = await scu.next();
      assert.equal(rj?.type, 0x03, 'A-ASSOCIATE-RJ');
      assert.deepEqual(rejectOf(rj!), { result: RejectResult.Permanent, source: RejectSource.ServiceUser, reason: RejectReason.CallingAeNotRecognized });
      scu.destroy();
      assert.equal(sink.opened, 0);
    });
    // The same caller from an allowed block (IPv4-mapped notation in the config) gets in.
    await withServer({ callers: [{ aeTitle: SCU, hosts: ['::ffff:127.0.0.0/104'] }] }, async ({ port }) => {
      const ok = await echoscu(port);
      assert.equal(ok.status, 0, ok.stderr);
    });
    // acceptAnyCaller: any calling AE, still only our called AE.
    await withServer({ callers: [], acceptAnyCaller: true }, async ({ port }) => {
      assert.equal((await echoscu(port, 'WHOEVER')).status, 0);
      assert.notEqual((await echoscu(port, 'WHOEVER', 'NOT_US')).status, 0);
    });
  });

  it('spool full (hasRoom false): 0xA700 without storing; Success again once there is room', async () => {
    await withServer({}, async ({ port, sink }) => {
      sink.room = false;
      const r = await clientStore(port, SCU, AE, [itemOf(image(200, TS.explicitLE))]);
      assert.deepEqual(r.statuses, [DimseStatus.OutOfResources]);
      assert.equal(sink.opened, 0, 'nothing written');
      sink.room = true;
      const r2 = await clientStore(port, SCU, AE, [itemOf(image(201, TS.explicitLE))]);
      assert.deepEqual(r2.statuses, [DimseStatus.Success]);
    });
  });

  it('spool error at commit: 0xA700 (transient), nothing left behind, the association goes on', async () => {
    await withServer({}, async ({ port, sink, events }) => {
      sink.failCommits = 1;
      const r = await clientStore(port, SCU, AE, [itemOf(image(300, TS.explicitLE)), itemOf(image(301, TS.explicitLE))]);
      assert.deepEqual(r.statuses, [DimseStatus.OutOfResources, DimseStatus.Success]);
      assert.equal(sink.stored.length, 1);
      assert.deepEqual(sink.leftovers(), []);
      assert.equal(events.filter((e) => e.type === 'instance.received').length, 1);
    });
  });

  it('more than maxAssociations: transient local-limit reject; accepted again once one ends', { skip: NO_DCMTK }, async () => {
    await withServer({ maxAssociations: 1 }, async ({ port, sink, events, server }) => {
      let open!: () => void;
      sink.gate = new Promise<void>((resolve) => (open = resolve));
      const first = clientStore(port, SCU, AE, [itemOf(image(400, TS.explicitLE))]);
      await waitFor(() => sink.opened === 1 && server.activeAssociations() === 1, 10_000, 'first association storing');
      const second = await echoscu(port);
      assert.notEqual(second.status, 0);
      assert.match(second.stderr, /Local Limit Exceeded/i);
      const scu = await RawScu.connect(port);
      scu.send(associateRq(SCU, AE, [{ id: 1, abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: [TS.implicitLE] }]));
      const rj = await scu.next();
      assert.deepEqual(rejectOf(rj!), { result: RejectResult.Transient, source: RejectSource.ServiceProviderPresentation, reason: RejectReason.LocalLimitExceeded });
      scu.destroy();
      assert.deepEqual(events.filter((e) => e.type === 'association.rejected').map((e) => 'reason' in e && e.reason),
        ['association limit reached (1)', 'association limit reached (1)']);
      sink.gate = undefined;
      open();
      assert.deepEqual((await first).statuses, [DimseStatus.Success], 'Success only after the commit resolved');
      await waitFor(() => server.activeAssociations() === 0, 5000, 'first association closed');
      const third = await echoscu(port);
      assert.equal(third.status, 0, third.stderr);
    });
  });

  it('listens only on the configured address', async () => {
    await withServer({}, async ({ port }) => {
      assert.equal(await tryConnect('127.0.0.1', port), 'connected');
      assert.equal(await tryConnect('127.0.0.2', port), 'ECONNREFUSED', '127.0.0.2 is loopback too, but not bound');
      const others = Object.values(os.networkInterfaces()).flat()
        .filter((a): a is os.NetworkInterfaceInfo => !!a && a.address !== '127.0.0.1' && !a.address.startsWith('fe80'));
      for (const a of others) {
        assert.notEqual(await tryConnect(a.address, port, 1000), 'connected', `reachable on ${a.address}`);
      }
    });
  });

  it('a second server on the same address and port fails to start (the promise rejects)', async () => {
    await withServer({}, async ({ port, sink }) => {
      const cfg = { ...config(), port };
      await assert.rejects(startDimseServer(cfg, sink, () => undefined), /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    });
  });

  it('connection lost in the middle of a data set: the writer is aborted, nothing is left', async () => {
    await withServer({}, async ({ port, sink, server }) => {
      const scu = await RawScu.connect(port);
      scu.send(associateRq(SCU, AE, [{ id: 1, abstractSyntax: SOP_CLASS.mrImage, transferSyntaxes: [TS.explicitLE] }]));
      assert.equal((await scu.next())?.type, 0x02);
      const file = image(500, TS.explicitLE);
      const m = itemOf(file);
      scu.send(pData(1, cStoreRq(1, m.sopClass, m.sopInstance), true, true));
      scu.send(pData(1, m.dataset.subarray(0, 200), false, false));
      await waitFor(() => sink.opened === 1, 5000, 'writer opened');
      scu.destroy();
      await waitFor(() => sink.aborted === 1 && server.activeAssociations() === 0, 5000, 'writer aborted');
      assert.deepEqual(sink.leftovers(), []);
      assert.equal(sink.stored.length, 0);
    });
  });

  it('a C-STORE on a context that was not accepted: 0x0122, nothing stored', async () => {
    await withServer({}, async ({ port, sink }) => {
      const scu = await RawScu.connect(port);
      scu.send(associateRq(SCU, AE, [
        { id: 1, abstractSyntax: SOP_CLASS.mrImage, transferSyntaxes: [TS.explicitLE] },
        { id: 3, abstractSyntax: '1.2.840.10008.5.1.4.1.2.2.1', transferSyntaxes: [TS.explicitLE] },
      ]));
      assert.equal((await scu.next())?.type, 0x02);
      const m = itemOf(image(600, TS.explicitLE));
      scu.send(pData(3, cStoreRq(7, m.sopClass, m.sopInstance), true, true));
      scu.send(pData(3, m.dataset, false, true));
      const rsp = await scu.next();
      assert.equal(statusOf(rsp!), DimseStatus.SopClassNotSupported);
      // ... and the association goes on.
      scu.send(pData(1, cStoreRq(8, m.sopClass, m.sopInstance), true, true));
      scu.send(pData(1, m.dataset, false, true));
      assert.equal(statusOf((await scu.next())!), DimseStatus.Success);
      scu.send(releaseRq());
      assert.equal((await scu.next())?.type, 0x06);
      scu.destroy();
      assert.equal(sink.stored.length, 1);
    });
  });

  it('a PDU longer than the announced maximum: the connection is dropped', async () => {
    await withServer({}, async ({ port, sink }) => {
      const scu = await RawScu.connect(port);
      scu.send(associateRq(SCU, AE, [{ id: 1, abstractSyntax: SOP_CLASS.mrImage, transferSyntaxes: [TS.explicitLE] }]));
      assert.equal((await scu.next())?.type, 0x02);
      const header = Buffer.from([0x04, 0, 0, 0, 0, 0]);
      header.writeUInt32BE(64 << 20, 2); // 64 MiB announced, max is 16 KiB
      scu.send(Buffer.concat([header, Buffer.alloc(1024)]));
      assert.equal(await scu.next(), null, 'closed by the server');
      assert.equal(sink.opened, 0);
    });
  });

  it('close() waits for a commit in flight and leaves no connection behind', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dimse-test-'));
    try {
      const sink = new DirSink(dir);
      const server = await startDimseServer(config(), sink, () => undefined);
      let open!: () => void;
      sink.gate = new Promise<void>((resolve) => (open = resolve));
      const sending = clientStore(server.port, SCU, AE, [itemOf(image(700, TS.explicitLE))]);
      await waitFor(() => sink.commitsStarted === 1, 5000, 'commit started');
      let closed = false;
      const closing = server.close().then(() => (closed = true));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(closed, false, 'close() waits for the commit');
      open();
      await closing;
      await sending;
      assert.equal(server.activeAssociations(), 0);
      assert.notEqual(await tryConnect(HOST, server.port, 1000), 'connected');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------- TLS

function dcmtkHasTls(): boolean {
  if (!hasDcmtk || !hasTool('openssl')) return false;
  const r = spawnSync('storescu', ['--help'], { encoding: 'latin1' });
  return /--enable-tls/.test(r.stdout + r.stderr);
}
const NO_TLS = dcmtkHasTls() ? false : 'DCMTK built without TLS, or openssl missing';

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'latin1', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A throw-away CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
function makeCerts(dir: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=deid-test-ca'], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const who of ['server', 'client']) {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=deid-test-${who}`], dir);
    openssl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.crt`, '-days', '2',
      ...(who === 'server' ? ['-extfile', 'server.ext'] : [])], dir);
  }
  // An unrelated CA and a client certificate it signed (not trusted by the server).
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.crt', '-days', '2', '-subj', '/CN=rogue'], dir);
}

describe('DIMSE ingest over TLS', { concurrency: false, skip: NO_TLS }, () => {
  let certs: string;
  before(() => {
    certs = fs.mkdtempSync(path.join(os.tmpdir(), 'dimse-tls-'));
    makeCerts(certs);
  });
  after(() => fs.rmSync(certs, { recursive: true, force: true }));

  const tlsConfig = (requireClientCert: boolean) => ({
    tls: {
      enabled: true, requireClientCert,
      certFile: path.join(certs, 'server.crt'), keyFile: path.join(certs, 'server.key'), caFile: path.join(certs, 'ca.crt'),
    },
  });

  it('mutual TLS: storescu --enable-tls with a CA-signed client certificate stores; no or untrusted certificate, or plain TCP, is refused', async () => {
    await withServer(tlsConfig(true), async ({ port, sink, events }) => {
      const file = path.join(certs, 'tls-image.dcm');
      const src = image(800, TS.explicitLE);
      fs.writeFileSync(file, src);
      const tlsArgs = ['+tls', path.join(certs, 'client.key'), path.join(certs, 'client.crt'), '+cf', path.join(certs, 'ca.crt')];
      const r = await runTool('storescu', [...tlsArgs, '-aet', SCU, '-aec', AE, HOST, String(port), file], 60_000);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(sink.stored.length, 1);
      const out = fs.readFileSync(sink.stored[0].file);
      assert.ok(out.subarray(sink.stored[0].prefix.length).equals(src.subarray(datasetOffset(src))));
      assert.equal((await echoscu(port, SCU, AE, tlsArgs)).status, 0);

      const before = events.length;
      const anonymous = await echoscu(port, SCU, AE, ['+tla', '+cf', path.join(certs, 'ca.crt')]);
      assert.notEqual(anonymous.status, 0, 'no client certificate');
      const rogue = await echoscu(port, SCU, AE, ['+tls', path.join(certs, 'rogue.key'), path.join(certs, 'rogue.crt'), '+cf', path.join(certs, 'ca.crt')]);
      assert.notEqual(rogue.status, 0, 'client certificate from another CA');
      const plain = await echoscu(port);
      assert.notEqual(plain.status, 0, 'plain TCP on the TLS port');
      assert.equal(events.slice(before).filter((e) => e.type === 'association.accepted').length, 0);
      assert.ok(events.slice(before).some((e) => e.type === 'association.rejected' && /TLS handshake failed/.test(e.reason ?? '')));
    });
  });

  it('server-only TLS: an anonymous TLS client is accepted when no client certificate is required', async () => {
    await withServer(tlsConfig(false), async ({ port }) => {
      const r = await echoscu(port, SCU, AE, ['+tla', '+cf', path.join(certs, 'ca.crt')]);
      assert.equal(r.status, 0, r.stderr);
    });
  });

  it('unreadable TLS files: startDimseServer rejects naming the field', async () => {
    const sink = new DirSink(fs.mkdtempSync(path.join(os.tmpdir(), 'dimse-test-')));
    try {
      await assert.rejects(startDimseServer(config({ tls: { enabled: true, certFile: '/nonexistent.crt', keyFile: '/nonexistent.key' } }), sink, () => undefined),
        /dimse\.tls\.certFile: cannot read \/nonexistent\.crt: ENOENT/);
    } finally {
      fs.rmSync(sink.dir, { recursive: true, force: true });
    }
  });
});
