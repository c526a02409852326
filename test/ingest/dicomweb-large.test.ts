/**
 * A 300 MB STOW-RS request, generated on the fly as a stream (never in memory), through a real
 * express server and Spool: every part lands byte for byte and the process RSS stays bounded
 * (the receiver streams parts into the spool; it never buffers a request or a part).
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import express from 'express';
import { createStowRsRouter, StowEvent } from '../../src/ingest/dicomweb';
import { Spool } from '../../src/spool/spool';
import { el, encodeFile, makeImageDataset } from '../support/dicom-builder';

const PARTS = 3;
const ROWS = 512, COLS = 512, FRAMES = 200; // 16-bit: 100 MiB of Pixel Data per part
const PIXEL_BYTES = ROWS * COLS * 2 * FRAMES;
const CHUNK = 1 << 20;
const BOUNDARY = 'large-request-boundary';
const RSS_BUDGET = 150 << 20;

/** Part 10 header of instance `i`, up to and including the Pixel Data element header. */
function header(i: number, study: string): Buffer {
  const elements = makeImageDataset({ rows: 8, cols: 8, extra: [
    el('Rows', [ROWS]), el('Columns', [COLS]), el('NumberOfFrames', String(FRAMES)),
    el('SOPInstanceUID', `${study}.${i + 1}`), el('StudyInstanceUID', study), el('SeriesInstanceUID', `${study}.0`),
  ] }).filter((e) => e.tag !== 0x7fe00010);
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0);
  pixelHeader.writeUInt16LE(0x0010, 2);
  pixelHeader.write('OW', 4, 'latin1');
  pixelHeader.writeUInt32LE(PIXEL_BYTES, 8);
  return Buffer.concat([encodeFile(elements), pixelHeader]);
}

/** Deterministic pixel chunk `n` of part `i` (fresh buffer: the HTTP stream may still hold the previous one). */
function pixelChunk(i: number, n: number, len: number): Buffer {
  const words = new Uint32Array(len / 4);
  const seed = (Math.imul(n + 1, 2654435761) ^ (i << 24)) >>> 0;
  for (let k = 0; k < words.length; k++) words[k] = (seed ^ Math.imul(k, 40503)) & 0x0fff0fff;
  return Buffer.from(words.buffer);
}

test('a 300 MB request streams into the spool with bounded memory', { timeout: 240_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-stow-large-'));
  const spool = await Spool.open(dir, { fsync: false, highWaterPercent: 100, minFreeMB: 0 });
  const events: StowEvent[] = [];
  const app = express();
  app.use('/dicomweb', (_req, res, next) => {
    res.locals.client = 'token#1';
    next();
  }, createStowRsRouter({ sink: spool, onEvent: (e) => events.push(e) }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const port = (server.address() as AddressInfo).port;
  const study = `2.25.${Date.now()}`;

  const headers = Array.from({ length: PARTS }, (_, i) => header(i, study));
  const partHead = Buffer.from(`\r\n--${BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1');
  const close = Buffer.from(`\r\n--${BOUNDARY}--\r\n`, 'latin1');
  const total = headers.reduce((n, h) => n + partHead.length + h.length + PIXEL_BYTES, 0) + close.length;
  assert.ok(total > 300e6);
  const hashes = headers.map(() => crypto.createHash('sha256'));
  function* body(): Generator<Buffer> {
    for (let i = 0; i < PARTS; i++) {
      yield partHead;
      hashes[i].update(headers[i]);
      yield headers[i];
      for (let off = 0, n = 0; off < PIXEL_BYTES; off += CHUNK, n++) {
        const c = pixelChunk(i, n, Math.min(CHUNK, PIXEL_BYTES - off));
        hashes[i].update(c);
        yield c;
      }
    }
    yield close;
  }

  (globalThis as { gc?: () => void }).gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const started = Date.now();
  try {
    const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: `/dicomweb/studies/${study}`, method: 'POST', headers: {
        'Content-Type': `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`, 'Content-Length': String(total),
      } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      pipeline(Readable.from(body(), { objectMode: false }), req).catch(reject);
    });
    peak = Math.max(peak, process.memoryUsage().rss);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(response.status, 200, response.body);
    const json = JSON.parse(response.body) as Record<string, { Value: Array<Record<string, { Value: string[] }>> }>;
    assert.deepEqual(json['00081199'].Value.map((v) => v['00081155'].Value[0]), headers.map((_, i) => `${study}.${i + 1}`));
    const growth = peak - baseline;
    t.diagnostic(`${(total / 1e6).toFixed(0)} MB in ${seconds.toFixed(1)} s, RSS ${(baseline / 2 ** 20).toFixed(0)} -> peak ${(peak / 2 ** 20).toFixed(0)} MiB (+${(growth / 2 ** 20).toFixed(0)})`);
    assert.ok(growth < RSS_BUDGET, `RSS grew by ${(growth / 2 ** 20).toFixed(0)} MiB`);

    // Every part is in the spool, byte for byte.
    const expected = hashes.map((h) => h.digest('hex')).sort();
    const stored = await Promise.all(fs.readdirSync(path.join(dir, 'incoming')).filter((f) => f.endsWith('.dcm')).map(async (f) => {
      const h = crypto.createHash('sha256');
      await pipeline(fs.createReadStream(path.join(dir, 'incoming', f), { highWaterMark: CHUNK }), h);
      return h.digest('hex');
    }));
    assert.deepEqual(stored.sort(), expected);
    assert.deepEqual(events.map((e) => e.type), ['instance.received', 'instance.received', 'instance.received']);
    assert.deepEqual(events.map((e) => (e.type === 'instance.received' ? e.bytes : 0)), headers.map((h) => h.length + PIXEL_BYTES));
  } finally {
    clearInterval(sampler);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
