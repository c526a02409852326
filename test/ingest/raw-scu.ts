/**
 * A deliberately tiny DICOM upper-layer client that writes PDUs byte by byte (PS3.8 9.3), for
 * what real SCUs will not do: stop in the middle of a data set, send oversized PDUs, or send a
 * C-STORE whose bytes are whatever the test says. Written from the standard, independent of
 * dcmjs-dimse and of src/.
 */
import * as net from 'node:net';

const APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';
const IMPLEMENTATION_UID = '1.2.826.0.1.3680043.9.7777.2';

export interface ProposedContext {
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
function item(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 0]), u16(body.length), body]);
}
function ae(title: string): Buffer {
  return Buffer.from(title.padEnd(16, ' '), 'latin1');
}
function pdu(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 0]), u32(body.length), body]);
}

export function associateRq(callingAE: string, calledAE: string, contexts: ProposedContext[], maxPdu = 16384): Buffer {
  const pcs = contexts.map((c) => item(0x20, Buffer.concat([
    Buffer.from([c.id, 0, 0, 0]),
    item(0x30, Buffer.from(c.abstractSyntax, 'latin1')),
    ...c.transferSyntaxes.map((t) => item(0x40, Buffer.from(t, 'latin1'))),
  ])));
  const userInfo = item(0x50, Buffer.concat([item(0x51, u32(maxPdu)), item(0x52, Buffer.from(IMPLEMENTATION_UID, 'latin1'))]));
  return pdu(0x01, Buffer.concat([
    u16(1), Buffer.alloc(2), ae(calledAE), ae(callingAE), Buffer.alloc(32),
    item(0x10, Buffer.from(APPLICATION_CONTEXT, 'latin1')), ...pcs, userInfo,
  ]));
}

/** One P-DATA-TF PDU holding one PDV. */
export function pData(pcId: number, value: Buffer, command: boolean, last: boolean): Buffer {
  const header = Buffer.from([pcId, (command ? 1 : 0) | (last ? 2 : 0)]);
  return pdu(0x04, Buffer.concat([u32(value.length + 2), header, value]));
}

export function releaseRq(): Buffer {
  return pdu(0x05, Buffer.alloc(4));
}

/** Implicit VR LE element of a command set. */
function cmdElement(element: number, value: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(0x0000, 0);
  h.writeUInt16LE(element, 2);
  h.writeUInt32LE(value.length, 4);
  return Buffer.concat([h, value]);
}
function uidValue(uid: string): Buffer {
  const b = Buffer.from(uid, 'latin1');
  return b.length % 2 ? Buffer.concat([b, Buffer.alloc(1)]) : b;
}
function us(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

/** C-STORE-RQ command set (PS3.7 9.3.1.1), with its group length. */
export function cStoreRq(messageId: number, sopClass: string, sopInstance: string): Buffer {
  const body = Buffer.concat([
    cmdElement(0x0002, uidValue(sopClass)),
    cmdElement(0x0100, us(0x0001)), // C-STORE-RQ
    cmdElement(0x0110, us(messageId)),
    cmdElement(0x0700, us(0)), // priority medium
    cmdElement(0x0800, us(0x0000)), // a data set follows
    cmdElement(0x1000, uidValue(sopInstance)),
  ]);
  const gl = Buffer.alloc(4);
  gl.writeUInt32LE(body.length);
  return Buffer.concat([cmdElement(0x0000, gl), body]);
}

export interface ReceivedPdu {
  type: number;
  body: Buffer;
}

/** A connected socket with a PDU reader. */
export class RawScu {
  private buf = Buffer.alloc(0);
  private waiters: Array<(p: ReceivedPdu | null) => void> = [];
  private queue: Array<ReceivedPdu | null> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 6) {
        const len = this.buf.readUInt32BE(2);
        if (this.buf.length < 6 + len) break;
        this.push({ type: this.buf[0], body: this.buf.subarray(6, 6 + len) });
        this.buf = this.buf.subarray(6 + len);
      }
    });
    socket.on('close', () => {
      this.closed = true;
      this.push(null);
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawScu> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RawScu(s)));
      s.once('error', reject);
    });
  }

  private push(p: ReceivedPdu | null): void {
    const w = this.waiters.shift();
    if (w) w(p);
    else this.queue.push(p);
  }

  /** The next PDU, or null when the connection closed first. */
  next(timeoutMs = 10_000): Promise<ReceivedPdu | null> {
    if (this.queue.length) return Promise.resolve(this.queue.shift()!);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const waiter = (p: ReceivedPdu | null): void => {
        clearTimeout(timer);
        resolve(p);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter); // a later PDU stays in the queue
        reject(new Error('no PDU within timeout'));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Value of command element (0000,eeee) in a DIMSE response carried in one P-DATA-TF PDU. */
function commandValue(p: ReceivedPdu, wanted: number): Buffer | undefined {
  if (p.type !== 0x04) return undefined;
  const value = p.body.subarray(6); // PDV length (4), pc id (1), control header (1)
  let pos = 0;
  while (pos + 8 <= value.length) {
    const group = value.readUInt16LE(pos);
    const element = value.readUInt16LE(pos + 2);
    const len = value.readUInt32LE(pos + 4);
    if (group === 0 && element === wanted) return value.subarray(pos + 8, pos + 8 + len);
    pos += 8 + len;
  }
  return undefined;
}

/** Status (0000,0900) of a DIMSE response, else undefined. */
export function statusOf(p: ReceivedPdu): number | undefined {
  return commandValue(p, 0x0900)?.readUInt16LE(0);
}

/** Error Comment (0000,0902) of a DIMSE response, trimmed, else undefined. */
export function errorCommentOf(p: ReceivedPdu): string | undefined {
  return commandValue(p, 0x0902)?.toString('latin1').replace(/[\0 ]+$/, '');
}

export interface AcceptInfo {
  contexts: Map<number, { result: number; transferSyntax: string }>;
  maxPduLength?: number;
  implementationClassUid?: string;
}

/** A-ASSOCIATE-RJ fields. */
export function rejectOf(rj: ReceivedPdu): { result: number; source: number; reason: number } {
  return { result: rj.body[1], source: rj.body[2], reason: rj.body[3] };
}

/** The A-ASSOCIATE-AC's result for each presentation context id, and its user information. */
export function parseAccept(ac: ReceivedPdu): AcceptInfo {
  const info: AcceptInfo = { contexts: new Map() };
  const out = info.contexts;
  let pos = 68; // fixed fields of A-ASSOCIATE-AC
  while (pos + 4 <= ac.body.length) {
    const type = ac.body[pos];
    const len = ac.body.readUInt16BE(pos + 2);
    const body = ac.body.subarray(pos + 4, pos + 4 + len);
    if (type === 0x21) {
      let ts = '';
      let p = 4;
      while (p + 4 <= body.length) {
        const l = body.readUInt16BE(p + 2);
        if (body[p] === 0x40) ts = body.toString('latin1', p + 4, p + 4 + l).replace(/\0+$/, '');
        p += 4 + l;
      }
      out.set(body[0], { result: body[2], transferSyntax: ts });
    }
    if (type === 0x50) {
      let p = 0;
      while (p + 4 <= body.length) {
        const l = body.readUInt16BE(p + 2);
        if (body[p] === 0x51) info.maxPduLength = body.readUInt32BE(p + 4);
        if (body[p] === 0x52) info.implementationClassUid = body.toString('latin1', p + 4, p + 4 + l).replace(/\0+$/, '');
        p += 4 + l;
      }
    }
    pos += 4 + len;
  }
  return info;
}

/**
 * A loopback TCP relay in front of the server that records what the client sent, and splits it
 * into the data sets of its C-STOREs (PDV values of non-command PDVs, up to each "last" flag).
 * The reference for "what was on the wire" when the sender re-encodes its files (DCMTK does).
 */
export interface WireTap {
  port: number;
  /** Data sets sent by the client so far, in order. */
  datasets(): Buffer[];
  close(): Promise<void>;
}

export function startWireTap(targetPort: number, host = '127.0.0.1'): Promise<WireTap> {
  const streams: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const chunks: Buffer[] = [];
    streams.push(chunks);
    const upstream = net.connect({ port: targetPort, host });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d: Buffer) => chunks.push(d));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve({
      port: (server.address() as net.AddressInfo).port,
      datasets: () => streams.flatMap((chunks) => splitDatasets(Buffer.concat(chunks))),
      close: () => new Promise<void>((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
      }),
    }));
  });
}

function splitDatasets(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let current: Buffer[] = [];
  let pos = 0;
  while (pos + 6 <= stream.length) {
    const type = stream[pos];
    const len = stream.readUInt32BE(pos + 2);
    const body = stream.subarray(pos + 6, pos + 6 + len);
    pos += 6 + len;
    if (type !== 0x04) continue;
    let p = 0;
    while (p + 6 <= body.length) {
      const pdvLen = body.readUInt32BE(p);
      const control = body[p + 5];
      const value = body.subarray(p + 6, p + 4 + pdvLen);
      p += 4 + pdvLen;
      if (control & 1) continue; // command
      current.push(value);
      if (control & 2) {
        out.push(Buffer.concat(current));
        current = [];
      }
    }
  }
  return out;
}
