import type { Socket } from 'node:net';

/**
 * dcmjs-dimse reassembles PDUs with one Buffer.concat of everything received so far per socket
 * chunk (a 256 KiB PDU arriving in 64 KiB chunks is copied about 2.5 times, all of it garbage
 * soon after), and buffers whatever length a header announces (up to 4 GiB).
 *
 * The framer sits between the socket and the library: it takes over the library's 'data'
 * listeners and calls them with exactly one whole PDU at a time, which their code passes on
 * without any concat. A PDU that arrived in one chunk is handed over as a slice of it (no copy);
 * one spread over chunks is copied once. A header announcing more than allowed drops the
 * connection before any of its body is buffered.
 */

/** P-DATA-TF: the variable field may not exceed the Maximum Length we announced (PS3.8 D.1). */
const P_DATA_TF = 0x04;
/** Room given to peers that count the PDV headers or the PDU header into the maximum. */
export const PDU_LENGTH_TOLERANCE = 1024;
/** Any other PDU (A-ASSOCIATE-RQ with many contexts and a user identity token is the largest). */
export const MAX_CONTROL_PDU_LENGTH = 1 << 20;
const HEADER = 6;

export class PduFramer {
  private chunks: Buffer[] = [];
  private have = 0;
  /** Length of the PDU being gathered (header included); 0 while its header is incomplete. */
  private need = 0;
  private tripped = false;

  constructor(
    private readonly maxPduLength: number,
    private readonly onPdu: (pdu: Buffer) => void,
    private readonly onViolation: (why: string) => void,
  ) {}

  /**
   * Moves every 'data' listener now on `socket` (the library's, registered by its constructor)
   * behind a framer: from then on they receive whole PDUs only.
   */
  static takeOver(socket: Socket, maxPduLength: number, onViolation: (why: string) => void): PduFramer {
    const listeners = socket.listeners('data') as Array<(pdu: Buffer) => void>;
    socket.removeAllListeners('data');
    const framer = new PduFramer(maxPduLength, (pdu) => { for (const l of listeners) l(pdu); }, onViolation);
    socket.on('data', (chunk: Buffer) => framer.push(chunk));
    return framer;
  }

  push(chunk: Buffer): void {
    if (this.tripped || !chunk.length) return;
    this.chunks.push(chunk);
    this.have += chunk.length;
    for (;;) {
      if (!this.need) {
        if (this.have < HEADER) return;
        const header = this.peekHeader();
        const type = header[0];
        const length = header.readUInt32BE(2);
        const limit = type === P_DATA_TF ? this.maxPduLength + PDU_LENGTH_TOLERANCE : MAX_CONTROL_PDU_LENGTH;
        if (length > limit) {
          this.tripped = true;
          this.chunks = [];
          this.have = 0;
          this.onViolation(`PDU of type ${type} announces ${length} bytes (limit ${limit})`);
          return;
        }
        this.need = HEADER + length;
      }
      if (this.have < this.need) return;
      const pdu = this.take(this.need);
      this.need = 0;
      this.onPdu(pdu);
      if (this.tripped) return;
    }
  }

  private peekHeader(): Buffer {
    const first = this.chunks[0];
    if (first.length >= HEADER) return first;
    const header = Buffer.allocUnsafe(HEADER);
    let filled = 0;
    for (const c of this.chunks) {
      filled += c.copy(header, filled, 0, Math.min(c.length, HEADER - filled));
      if (filled === HEADER) break;
    }
    return header;
  }

  /** The next `n` bytes: a slice of the first chunk when it holds them all, else one copy. */
  private take(n: number): Buffer {
    this.have -= n;
    const first = this.chunks[0];
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const part = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, part);
      filled += part;
      if (part === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(part);
    }
    return out;
  }
}
