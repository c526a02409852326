/**
 * The PDU framer between the socket and dcmjs-dimse: whatever the chunking, the listener gets
 * the same PDUs, whole and in order; too long a header trips it before any body is buffered.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { MAX_CONTROL_PDU_LENGTH, PDU_LENGTH_TOLERANCE, PduFramer } from '../../src/ingest/dimse/pdu-framer';

function pdu(type: number, bodyLength: number, fill: number): Buffer {
  const b = Buffer.alloc(6 + bodyLength, fill);
  b[0] = type;
  b[1] = 0;
  b.writeUInt32BE(bodyLength, 2);
  return b;
}

/** Splits `bytes` at pseudo-random points (a fixed seed: the same cuts every run). */
function chunked(bytes: Buffer, seed: number, maxChunk: number): Buffer[] {
  const out: Buffer[] = [];
  let x = seed;
  for (let pos = 0; pos < bytes.length;) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const n = Math.min(bytes.length - pos, 1 + (x % maxChunk));
    out.push(Buffer.from(bytes.subarray(pos, pos + n)));
    pos += n;
  }
  return out;
}

describe('PduFramer', () => {
  const stream = [pdu(0x01, 200, 1), pdu(0x04, 70_000, 2), pdu(0x04, 5, 3), pdu(0x04, 0, 4), pdu(0x05, 4, 5), pdu(0x04, 65_536, 6)];
  const all = Buffer.concat(stream);

  for (const [seed, maxChunk] of [[1, 1], [2, 7], [3, 4096], [4, 65_536], [5, 300_000]] as const) {
    it(`chunks of 1..${maxChunk} bytes: the same PDUs, whole and in order`, () => {
      const got: Buffer[] = [];
      const framer = new PduFramer(128 << 10, (p) => got.push(Buffer.from(p)), (why) => assert.fail(why));
      for (const c of chunked(all, seed, maxChunk)) framer.push(c);
      assert.equal(got.length, stream.length);
      got.forEach((p, i) => assert.ok(p.equals(stream[i]), `PDU ${i} differs`));
    });
  }

  it('a PDU inside one chunk is handed over without a copy', () => {
    const chunk = Buffer.concat([pdu(0x04, 10, 7), pdu(0x04, 3, 8)]);
    const got: Buffer[] = [];
    new PduFramer(1024, (p) => got.push(p), () => assert.fail()).push(chunk);
    assert.equal(got.length, 2);
    assert.equal(got[0].buffer, chunk.buffer);
    assert.equal(got[1].byteOffset, chunk.byteOffset + 16);
  });

  it('a P-DATA-TF longer than allowed trips at its header; nothing more is delivered', () => {
    const got: Buffer[] = [];
    const why: string[] = [];
    const framer = new PduFramer(16_384, (p) => got.push(p), (w) => why.push(w));
    framer.push(pdu(0x04, 16_384 + PDU_LENGTH_TOLERANCE, 1)); // at the limit: fine
    framer.push(pdu(0x04, 16_384 + PDU_LENGTH_TOLERANCE + 1, 2).subarray(0, 6));
    framer.push(pdu(0x04, 5, 3));
    assert.equal(got.length, 1);
    assert.equal(why.length, 1);
    assert.match(why[0], /type 4 announces 17409 bytes \(limit 17408\)/);
  });

  it('other PDUs are bounded by the control limit', () => {
    const why: string[] = [];
    const header = Buffer.alloc(6);
    header[0] = 0x01;
    header.writeUInt32BE(MAX_CONTROL_PDU_LENGTH + 1, 2);
    new PduFramer(1 << 30, () => assert.fail(), (w) => why.push(w)).push(header);
    assert.equal(why.length, 1);
  });

  it('takeOver moves the listeners already on the socket behind the framer', () => {
    const socket = new EventEmitter() as unknown as Socket;
    const got: Buffer[] = [];
    socket.on('data', (p: Buffer) => got.push(Buffer.from(p)));
    PduFramer.takeOver(socket, 1024, () => assert.fail());
    assert.equal(socket.listenerCount('data'), 1);
    const p = pdu(0x04, 100, 9);
    socket.emit('data', p.subarray(0, 3));
    socket.emit('data', p.subarray(3, 50));
    assert.equal(got.length, 0);
    socket.emit('data', p.subarray(50));
    assert.equal(got.length, 1);
    assert.ok(got[0].equals(p));
  });
});
