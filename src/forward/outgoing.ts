import * as fs from 'node:fs';
import type { OutgoingInstance } from './destination';

/**
 * The bytes of an outgoing instance, wherever they are (OutgoingInstance: in memory or in a
 * file). Destinations read them through these, never through `file` directly.
 */

/** Its size in bytes (a stat for a file). */
export async function outgoingSize(inst: OutgoingInstance): Promise<number> {
  if (inst.bytes) return inst.bytes.length;
  const st = await fs.promises.stat(fileOf(inst));
  if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'NOT_A_FILE' });
  return st.size;
}

/** All of its bytes (the file read whole: for the C-STORE destination, which sends one buffer). */
export function outgoingBytesSync(inst: OutgoingInstance): Buffer {
  return inst.bytes ?? fs.readFileSync(fileOf(inst));
}

/** Names it in error messages: its file, or its SOP Instance UID (de-identified) when in memory. */
export const outgoingName = (inst: OutgoingInstance): string => inst.file ?? `in-memory instance ${inst.sopInstanceUid}`;

export function fileOf(inst: OutgoingInstance): string {
  if (inst.file === undefined) throw new Error(`outgoing instance ${inst.sopInstanceUid} has neither bytes nor a file`);
  return inst.file;
}
