import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, test } from 'node:test';
import { openInstance } from '../../src/io/instance-file';
import { ReceiveMeta, Spool, SpoolError, SpoolOptions } from '../../src/spool/spool';
import { waitFor } from '../support/async-peers';
import { makeImage } from '../support/dicom-builder';
import { withTempDir } from '../support/tools';
import { crashVariants } from './variants';

/** Spool.open, with the spool's kept directory handles closed after the test (no GC warnings). */
const opened: Spool[] = [];
async function openSpool(dir: string, opts: SpoolOptions): Promise<Spool> {
  const spool = await Spool.open(dir, opts);
  opened.push(spool);
  return spool;
}
afterEach(async () => {
  for (const spool of opened.splice(0)) await spool.close();
});

const OPTS = { fsync: true, highWaterPercent: 100, minFreeMB: 0 };
const meta = (callingAE: string): ReceiveMeta => ({ source: 'dimse', callingAE, calledAE: 'GATEWAY', peer: '127.0.0.1', receivedAt: '2026-01-02T03:04:05.000Z' });
const ls = (dir: string): string[] => fs.readdirSync(dir).sort();
const parses = (file: string): void => openInstance(file).close();
const notFound = (err: unknown): boolean => err instanceof SpoolError && err.code === 'NOT_FOUND';

test('commit, claim and complete move one entry through incoming and processing', async () => {
  await withTempDir(async (dir) => {
    const spool = await openSpool(dir, OPTS);
    assert.deepEqual(ls(dir), ['incoming', 'processing', 'quarantine', 'tmp']);
    let notified = 0;
    spool.onIncoming(() => notified++);
    const bytes = makeImage();
    const r = await spool.acceptFile(bytes, meta('A'));
    assert.equal(r.status, 'stored');
    assert.equal(notified, 0, 'listeners run after the committer');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(notified, 1);
    assert.equal(r.entry.state, 'incoming');
    assert.deepEqual(fs.readFileSync(r.entry.file), bytes);
    assert.deepEqual(ls(path.join(dir, 'incoming')), [`${r.entry.id}.dcm`, `${r.entry.id}.json`]);
    assert.deepEqual(ls(path.join(dir, 'tmp')), []);
    assert.deepEqual(spool.counts(), { incoming: 1, processing: 0, quarantine: 0 });

    const e = spool.claim();
    assert.ok(e);
    assert.equal(e.id, r.entry.id);
    assert.equal(e.state, 'processing');
    assert.deepEqual(e.meta, meta('A'));
    assert.deepEqual(fs.readFileSync(e.file), bytes);
    assert.equal(spool.claim(), null);
    assert.deepEqual(spool.counts(), { incoming: 0, processing: 1, quarantine: 0 });

    await spool.complete(e.id);
    assert.deepEqual(ls(path.join(dir, 'processing')), []);
    assert.deepEqual(spool.counts(), { incoming: 0, processing: 0, quarantine: 0 });
    await assert.rejects(spool.complete(e.id), notFound);
  });
});

test('a streamed writer keeps the bytes exactly, prefix first, with chunks small and large', async () => {
  await withTempDir(async (dir) => {
    const spool = await openSpool(dir, OPTS);
    const bytes = makeImage({ rows: 600, cols: 600 }); // 720 KB: staged and direct writes
    const w = spool.openWriter(meta('S'), bytes.subarray(0, 132));
    const cuts = [132, 1000, 1001, 300_000, 301_000, 700_000, bytes.length];
    for (let i = 1; i < cuts.length; i++) w.write(bytes.subarray(cuts[i - 1], cuts[i]));
    assert.equal(w.bytes, bytes.length);
    // The part file is created and written on the thread pool while the bytes come, not at
    // commit (only the last staged chunk, under 256 KiB, waits for it).
    const part = await waitFor('the part file holding the bytes streamed so far', async () => {
      const names = ls(path.join(dir, 'tmp')).filter((n) => n.endsWith('.part'));
      return names.length === 1 && fs.statSync(path.join(dir, 'tmp', names[0])).size >= 301_000 ? names[0] : undefined;
    }, 10_000);
    assert.ok(part);
    const r = await w.commit();
    assert.equal(r.status, 'stored');
    assert.deepEqual(fs.readFileSync(r.entry.file), bytes);
    assert.throws(() => w.write(Buffer.alloc(1)), (err) => err instanceof SpoolError && err.code === 'WRITER_CLOSED');
    await assert.rejects(w.commit(), (err) => err instanceof SpoolError && err.code === 'WRITER_CLOSED');
    await w.abort(); // a no-op after commit: the entry stays
    assert.ok(fs.existsSync(r.entry.file));

    const aborted = spool.openWriter(meta('X'));
    aborted.write(bytes.subarray(0, 5000));
    await aborted.abort();
    assert.deepEqual(ls(path.join(dir, 'tmp')), []);
    assert.deepEqual(ls(path.join(dir, 'incoming')).sort(), [`${r.entry.id}.dcm`, `${r.entry.id}.json`], 'no sidecar left of the aborted entry');
    assert.deepEqual(spool.counts(), { incoming: 1, processing: 0, quarantine: 0 });
  });
});

test('a writer keeps the bytes exactly when many small chunks fill and overflow its staging buffer', async () => {
  await withTempDir(async (dir) => {
    const spool = await openSpool(dir, OPTS);
    const bytes = makeImage({ rows: 500, cols: 500 }); // 500 KB: about two staging buffers of small chunks
    const w = spool.openWriter(meta('M'), bytes.subarray(0, 132));
    // Sizes from 1 byte to just under the direct-write size, so the staging buffer grows from
    // its first size, fills, is handed to a write and starts again, with a direct chunk between.
    let pos = 132;
    for (let i = 0; pos < bytes.length; i++) {
      const size = i === 40 ? 70_000 : [1, 7, 4093, 9000, 17_000, 33_000, 65_535][i % 7];
      w.write(bytes.subarray(pos, Math.min(bytes.length, pos + size)));
      pos += size;
    }
    const r = await w.commit();
    assert.equal(r.status, 'stored');
    assert.deepEqual(fs.readFileSync(r.entry.file), bytes);
  });
});

test('a writer issues its writes at once, each at its offset, not one after the other', async () => {
  await withTempDir(async (dir) => {
    const spool = await openSpool(dir, OPTS);
    const bytes = makeImage({ rows: 700, cols: 700 }); // ~980 KB: several direct chunks
    // Counts the writes the thread pool holds at once. A chain (each write issued when the
    // previous one finished, which needs the main thread in between) never has two.
    const fsMod = require('node:fs') as { write: (...args: unknown[]) => void };
    const orig = fsMod.write;
    let inFlight = 0;
    let most = 0;
    fsMod.write = (...args: unknown[]) => {
      const cb = args[args.length - 1] as (...r: unknown[]) => void;
      inFlight++;
      most = Math.max(most, inFlight);
      orig.apply(fsMod, [...args.slice(0, -1), (...r: unknown[]) => {
        inFlight--;
        cb(...r);
      }]);
    };
    try {
      const w = spool.openWriter(meta('P'), bytes.subarray(0, 132));
      for (let pos = 132; pos < bytes.length; pos += 100_000) w.write(bytes.subarray(pos, Math.min(bytes.length, pos + 100_000)));
      const r = await w.commit();
      assert.equal(r.status, 'stored');
      assert.deepEqual(fs.readFileSync(r.entry.file), bytes);
    } finally {
      fsMod.write = orig;
    }
    assert.ok(most >= 2, `at most ${most} write(s) in flight at once`);
  });
});

test('a part file that cannot be created fails the commit (and an abort) with nothing left behind', async () => {
  await withTempDir(async (dir) => {
    const spool = await openSpool(dir, OPTS);
    fs.rmSync(path.join(dir, 'tmp'), { recursive: true });
    const w = spool.openWriter(meta('E'));
    w.write(makeImage());
    await assert.rejects(w.commit(), (err: NodeJS.ErrnoException) => err.code === 'ENOENT' && err.syscall === 'open');
    const a = spool.openWriter(meta('F'));
    a.write(Buffer.alloc(10));
    await a.abort();
    assert.deepEqual(ls(path.join(dir, 'incoming')), []);
    assert.deepEqual(spool.counts(), { incoming: 0, processing: 0, quarantine: 0 });
    fs.mkdirSync(path.join(dir, 'tmp'));
    assert.equal((await spool.acceptFile(makeImage(), meta('G'))).status, 'stored', 'the spool goes on once the folder is back');
  });
});

test('claim takes the oldest entry by id, whatever the commit order', async () => {
  await withTempDir(async (dir) => {
    const spool = await openSpool(dir, { ...OPTS, fsync: false });
    const writers = ['first', 'second', 'third'].map((ae) => {
      const w = spool.openWriter(meta(ae));
      w.write(makeImage());
      return w;
    });
    for (const w of [writers[2], writers[0], writers[1]]) assert.equal((await w.commit()).status, 'stored');
    assert.deepEqual([spool.claim(), spool.claim(), spool.claim()].map((e) => e?.meta.callingAE), ['first', 'second', 'third']);
  });
});

test('quarantine, listQuarantine, release and purge', async () => {
  await withTempDir(async (dir) => {
    const spool = await openSpool(dir, OPTS);
    const bytes = makeImage({ modality: 'CT' });
    const { entry } = await spool.acceptFile(bytes, meta('Q'));
    const e = spool.claim()!;
    const q = await spool.quarantine(e.id, 'deid', 'PIXEL_RISK', 'burned-in annotation');
    assert.deepEqual(q, { id: entry.id, file: path.join(dir, 'quarantine', `${entry.id}.dcm`), meta: meta('Q'), state: 'quarantine' });
    assert.deepEqual(ls(path.join(dir, 'processing')), []);
    const side = JSON.parse(fs.readFileSync(path.join(dir, 'quarantine', `${entry.id}.json`), 'utf8'));
    assert.deepEqual(Object.keys(side).sort(), ['at', 'code', 'id', 'meta', 'reason', 'stage']);
    const list = await spool.listQuarantine();
    assert.equal(list.length, 1);
    assert.deepEqual({ ...list[0], at: '' }, { id: entry.id, stage: 'deid', code: 'PIXEL_RISK', reason: 'burned-in annotation', at: '', bytes: bytes.length });
    assert.ok(!Number.isNaN(Date.parse(list[0].at)));

    let notified = 0;
    spool.onIncoming(() => notified++);
    await spool.release(entry.id);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(notified, 1);
    assert.deepEqual(spool.counts(), { incoming: 1, processing: 0, quarantine: 0 });
    const again = spool.claim()!;
    assert.equal(again.id, entry.id);
    assert.deepEqual(again.meta, meta('Q'), 'the receive meta survives a round trip through quarantine');
    assert.deepEqual(fs.readFileSync(again.file), bytes);

    await spool.quarantine(again.id, 'forward', 'PERMANENT', 'rejected by destination');
    await spool.purge(again.id);
    assert.deepEqual(ls(path.join(dir, 'quarantine')), []);
    assert.deepEqual(await spool.listQuarantine(), []);
    for (const op of [() => spool.purge(again.id), () => spool.release(again.id), () => spool.quarantine(again.id, 's', 'c', 'r'), () => spool.complete('../../etc/passwd')]) {
      await assert.rejects(op(), notFound);
    }
  });
});

test('malformed input is quarantined at ingest with the parser code, never stored', async () => {
  await withTempDir(async (dir) => {
    const spool = await openSpool(dir, OPTS);
    let notified = 0;
    spool.onIncoming(() => notified++);
    const good = makeImage();
    const cases: [string, Buffer, string[]][] = [
      ['not DICOM', Buffer.from('this is a text file, not an image\n'.repeat(20)), ['NOT_DICOM']],
      ['empty', Buffer.alloc(0), ['NOT_DICOM']],
      ['truncated in Pixel Data', good.subarray(0, good.length - 40), ['TRUNCATED', 'BAD_LENGTH']],
      ['truncated in the header', good.subarray(0, 300), ['TRUNCATED', 'BAD_LENGTH']],
    ];
    for (const [name, bytes, codes] of cases) {
      const r = await spool.acceptFile(bytes, meta('BAD'));
      assert.equal(r.status, 'quarantined', name);
      if (r.status !== 'quarantined') continue;
      assert.ok(codes.includes(r.code), `${name}: ${r.code} ${r.reason}`);
      assert.ok(r.reason.length > 0);
      assert.equal(r.entry.state, 'quarantine');
      assert.deepEqual(fs.readFileSync(r.entry.file), bytes, `${name}: the original bytes are kept for review`);
      const side = JSON.parse(fs.readFileSync(path.join(dir, 'quarantine', `${r.entry.id}.json`), 'utf8'));
      assert.deepEqual([side.id, side.stage, side.code, side.meta], [r.entry.id, 'ingest', r.code, meta('BAD')]);
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(notified, 0);
    assert.deepEqual(spool.counts(), { incoming: 0, processing: 0, quarantine: cases.length });
    assert.deepEqual((await spool.listQuarantine()).map((q) => q.stage), cases.map(() => 'ingest'));
    assert.deepEqual(ls(path.join(dir, 'incoming')), []);
    assert.deepEqual(ls(path.join(dir, 'tmp')), []);
  });
});

test('recovery repairs every half-done state by hand-made example', async () => {
  await withTempDir(async (dir) => {
    const spool = await openSpool(dir, OPTS);
    const ids: string[] = [];
    for (const ae of ['a', 'b', 'c', 'd']) ids.push((await spool.acceptFile(makeImage(), meta(ae))).entry.id);
    const [a, b, c, d] = ids;
    const p = (...parts: string[]): string => path.join(dir, ...parts);
    spool.claim(); // a: in processing when "killed"
    // b: a claim cut after the .dcm rename (sidecar still in incoming)
    fs.renameSync(p('incoming', `${b}.dcm`), p('processing', `${b}.dcm`));
    // c: a quarantine cut after the new sidecar landed, before the .dcm moved
    fs.writeFileSync(p('quarantine', `${c}.json`), JSON.stringify({ id: c, stage: 'deid', code: 'X', reason: 'r', meta: meta('c'), at: 'now' }));
    // d: its sidecar was lost (fsync off + power loss): it is still an entry
    fs.rmSync(p('incoming', `${d}.json`));
    // a commit cut before its commit point, and one cut after its sidecar landed
    fs.writeFileSync(p('tmp', 'zzz.part'), 'partial');
    fs.writeFileSync(p('incoming', 'zzzz-orphan.json'), JSON.stringify({ id: 'zzzz-orphan', meta: meta('o') }));

    let backlog = 0;
    const reopened = await openSpool(dir, OPTS);
    reopened.onIncoming(() => backlog++);
    assert.deepEqual(ls(p('tmp')), []);
    assert.deepEqual(ls(p('processing')), []);
    assert.deepEqual(ls(p('quarantine')), []);
    assert.deepEqual(ls(p('incoming')), [`${a}.dcm`, `${a}.json`, `${b}.dcm`, `${b}.json`, `${c}.dcm`, `${c}.json`, `${d}.dcm`]);
    assert.deepEqual(reopened.counts(), { incoming: 4, processing: 0, quarantine: 0 });
    const claimed = [1, 2, 3, 4].map(() => reopened.claim()!);
    assert.deepEqual(claimed.map((e) => e.id), ids);
    assert.deepEqual(claimed.slice(0, 3).map((e) => e.meta), [meta('a'), meta('b'), meta('c')]);
    assert.equal(claimed[3].meta.source, 'folder');
    await new Promise((r) => setImmediate(r));
    assert.equal(backlog, 1, 'a listener added while there is backlog is called once');
  });
});

test('hasRoom is false past the high-water mark or under the free-space floor', async () => {
  await withTempDir(async (dir) => {
    assert.equal((await openSpool(dir, { fsync: false, highWaterPercent: 100, minFreeMB: 0 })).hasRoom(), true);
    assert.equal((await openSpool(dir, { fsync: false, highWaterPercent: 100, minFreeMB: 1e12 })).hasRoom(), false);
    const s = fs.statfsSync(dir);
    const used = (1 - s.bfree / s.blocks) * 100;
    const below = await openSpool(dir, { fsync: false, highWaterPercent: Math.max(0, Math.floor(used) - 1), minFreeMB: 0 });
    assert.equal(below.hasRoom(), false, `disk is ${used.toFixed(1)}% used`);
    assert.equal(below.hasRoom(), false, 'cached');
  });
});

/**
 * Runs the child until `kill.afterMs` past READY, then SIGKILLs it, or lets it SIGKILL itself at
 * its `kill.atStep`-th file-system step; returns its lines.
 */
function runAndKill(dir: string, kill: { afterMs: number } | { atStep: number }): Promise<string[]> {
  const delayMs = 'afterMs' in kill ? kill.afterMs : 30_000;
  const args = [path.join(__dirname, 'crash-child.js'), dir, String('atStep' in kill ? kill.atStep : 0)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (!timer && out.includes('READY\n')) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      clearTimeout(timer);
      if (signal !== 'SIGKILL' || !out.includes('READY\n')) reject(new Error(`child ended with ${code}/${signal} before the kill:\n${err}`));
      else resolve(out.split('\n').filter((l) => l && l !== 'READY'));
    });
  });
}

test('after SIGKILL at random moments, every acknowledged instance is there exactly once and intact', { timeout: 180_000 }, async () => {
  await withTempDir(async (dir) => {
    // Half the kills come on a timer (anywhere, mostly inside fsyncs), half exactly between two
    // file-system steps (a rename, rm, open or write), so short windows between steps get hit too.
    const rounds = 12;
    const committed = new Map<string, number>(); // id -> good variant
    const ingestQuarantined = new Set<string>();
    const quarantineStarted = new Set<string>();
    const kills: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const kill = round % 2 ? { atStep: 1 + Math.floor(Math.random() * 300) } : { afterMs: 20 + Math.floor(Math.random() * 400) };
      kills.push(JSON.stringify(kill));
      for (const line of await runAndKill(dir, kill)) {
        const [kind, id, extra] = line.split(' ');
        if (kind === 'C') committed.set(id, Number(extra));
        else if (kind === 'I') ingestQuarantined.add(id);
        else if (kind === 'q') quarantineStarted.add(id);
        else assert.fail(`unexpected child line ${line}`);
      }
    }
    const why = `kills ${kills.join(' ')}`;
    assert.ok(committed.size >= rounds, `the child made progress (${committed.size} commits; ${why})`);

    const spool = await openSpool(dir, OPTS);
    const p = (...parts: string[]): string => path.join(dir, ...parts);
    assert.deepEqual(ls(p('tmp')), [], why);
    assert.deepEqual(ls(p('processing')), [], why);
    const where = new Map<string, 'incoming' | 'quarantine'>();
    for (const state of ['incoming', 'quarantine'] as const) {
      const names = ls(p(state));
      for (const n of names) {
        assert.match(n, /^[0-9a-z-]+\.(dcm|json)$/, `${state}/${n} (${why})`);
        const id = n.replace(/\.(dcm|json)$/, '');
        assert.ok(names.includes(`${id}.dcm`) && names.includes(`${id}.json`), `${state}/${id}: .dcm and .json go together (${why})`);
        if (n.endsWith('.dcm')) {
          assert.ok(!where.has(id), `${id} is in one folder only (${why})`);
          where.set(id, state);
        }
      }
    }
    assert.deepEqual(spool.counts(), {
      incoming: [...where.values()].filter((s) => s === 'incoming').length,
      processing: 0,
      quarantine: [...where.values()].filter((s) => s === 'quarantine').length,
    });

    const { good, truncated } = crashVariants();
    const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');
    const goodHashes = good.map(sha);
    for (const [id, v] of committed) {
      const state = where.get(id);
      assert.ok(state, `acknowledged ${id} survived (${why})`);
      const side = JSON.parse(fs.readFileSync(p(state, `${id}.json`), 'utf8'));
      assert.equal(side.meta.callingAE, 'CRASHER');
      assert.equal(sha(fs.readFileSync(p(state, `${id}.dcm`))), goodHashes[v], `${id} bytes intact (${why})`);
      if (state === 'quarantine') assert.ok(quarantineStarted.has(id) && side.stage === 'test', `${id} quarantined only on request (${why})`);
    }
    for (const id of ingestQuarantined) {
      assert.equal(where.get(id), 'quarantine', `ingest-quarantined ${id} stays quarantined (${why})`);
      assert.equal(sha(fs.readFileSync(p('quarantine', `${id}.dcm`))), sha(truncated));
    }
    let unacknowledged = 0;
    for (const [id, state] of where) {
      if (!committed.has(id) && !ingestQuarantined.has(id)) unacknowledged++;
      const side = JSON.parse(fs.readFileSync(p(state, `${id}.json`), 'utf8'));
      if (state === 'incoming' || side.stage !== 'ingest') parses(p(state, `${id}.dcm`));
    }
    // An entry committed but not yet reported when the kill came: at most one per round.
    assert.ok(unacknowledged <= rounds, `${unacknowledged} unacknowledged entries (${why})`);
  });
});
