import type { Socket } from 'node:net';

/**
 * dcmjs-dimse buffers a whole PDU before parsing it, whatever length its header announces
 * (up to 4 GiB), growing the buffer with one Buffer.concat per socket chunk. This watches the
 * same byte stream (registered before dcmjs-dimse's own 'data' listener) and reports a PDU
 * longer than allowed, so the connection can be dropped before memory runs away.
 */

/** P-DATA-TF: the variable field may not exceed the Maximum Length we announced (PS3.8 D.1). */
const P_DATA_TF = 0x04;
/** Room given to peers that count the PDV headers or the PDU header into the maximum. */
export const PDU_LENGTH_TOLERANCE = 1024;
/** Any other PDU (A-ASSOCIATE-RQ with many contexts and a user identity token is the largest). */
export const MAX_CONTROL_PDU_LENGTH = 1 << 20;
const HEADER = 6;

export function guardPduLengths(socket: Socket, maxPduLength: number, onViolation: (why: string) => void): void {
  const header = Buffer.alloc(HEADER);
  let headerFill = 0;
  /** Bytes of the current PDU body still to skip. */
  let remaining = 0;
  let tripped = false;

  socket.on('data', (chunk: Buffer) => {
    if (tripped) return;
    let pos = 0;
    while (pos < chunk.length) {
      if (remaining > 0) {
        const skip = Math.min(remaining, chunk.length - pos);
        remaining -= skip;
        pos += skip;
        continue;
      }
      const take = Math.min(HEADER - headerFill, chunk.length - pos);
      chunk.copy(header, headerFill, pos, pos + take);
      headerFill += take;
      pos += take;
      if (headerFill < HEADER) return;
      headerFill = 0;
      const type = header[0];
      const length = header.readUInt32BE(2);
      const limit = type === P_DATA_TF ? maxPduLength + PDU_LENGTH_TOLERANCE : MAX_CONTROL_PDU_LENGTH;
      if (length > limit) {
        tripped = true;
        onViolation(`PDU of type ${type} announces ${length} bytes (limit ${limit})`);
        return;
      }
      remaining = length;
    }
  });
}
