import { padByteFor } from './vr';

/** Encodes an ASCII string value padded to even length as PS3.5 requires. */
export function encodeString(value: string, vr: string): Buffer {
  const raw = Buffer.from(value, 'latin1');
  if (raw.length % 2 === 0) return raw;
  const padded = Buffer.alloc(raw.length + 1, padByteFor(vr));
  raw.copy(padded);
  return padded;
}

/** Splits a multi-valued string value on '\' (safe for every charset the engine keeps bytes of). */
export const splitValues = (value: string): string[] => value.split('\\');
