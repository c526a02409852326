import { createHash } from 'node:crypto';
import { AuditEntry, RESERVED_FIELDS } from './events';

/** The prevHash of the first entry of a chain. */
export const ZERO_HASH = '0'.repeat(64);

const HEX_DIGEST = /^(?:[0-9a-f]{32}|[0-9a-f]{64})$/;
/** Fields that must hold a digest: `originalSopHash`, `configHash`, `pixelSha256Before`... */
const DIGEST_FIELD = /Hash$|Sha256/;

/**
 * Key-sorted JSON, the form the hash is computed over: the writer may lay out the line however it
 * likes (readable order) and a verifier re-derives the same bytes from the parsed line.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The chain link: sha256(prevHash + canonical JSON of the entry without `hash`). */
export function entryHash(entry: Omit<AuditEntry, 'hash'> | Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = entry as Record<string, unknown>;
  return createHash('sha256').update(String(rest.prevHash)).update(canonicalJson(rest)).digest('hex');
}

/**
 * A deep copy of an event that is exactly what a reader will parse back from the line, or a
 * TypeError. Values JSON would silently change (NaN -> null, a Date -> a string, an undefined array
 * slot -> null) are refused rather than altered, so the entry `write` returns is the entry on disk.
 * Undefined object properties are dropped, as JSON does.
 */
export function normalizeEvent(event: object): Record<string, unknown> {
  const copy = clone(event, 'event') as Record<string, unknown>;
  if (typeof copy.type !== 'string' || !copy.type) throw new TypeError('audit event without a type');
  for (const key of RESERVED_FIELDS) {
    if (key in copy) throw new TypeError(`audit event ${copy.type}: field "${key}" is reserved for the chain`);
  }
  for (const [key, v] of Object.entries(copy)) {
    if (DIGEST_FIELD.test(key) && !(typeof v === 'string' && HEX_DIGEST.test(v))) {
      // The guard against the likeliest PHI leak: a raw UID passed where its keyed hash belongs.
      throw new TypeError(`audit event ${copy.type}: ${key} must be a lowercase hex digest (use Pseudonymizer.keyedHash)`);
    }
  }
  return copy;
}

function clone(value: unknown, path: string): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`audit ${path}: ${value} is not a finite number`);
      return value;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) {
        return Array.from(value, (v, i) => {
          if (v === undefined) throw new TypeError(`audit ${path}[${i}]: undefined in an array`);
          return clone(v, `${path}[${i}]`);
        });
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new TypeError(`audit ${path}: only plain objects, not ${proto?.constructor?.name}`);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v !== undefined) out[k] = clone(v, `${path}.${k}`);
      }
      return out;
    }
    default:
      throw new TypeError(`audit ${path}: a ${typeof value} cannot be written as JSON`);
  }
}

/** The parts of a line that make it an entry of a chain (anything else is for the reader). */
export interface ParsedLine {
  entry?: AuditEntry;
  /** Why the line is not an entry: invalid JSON, or JSON without the chain fields. */
  error?: string;
}

export function parseLine(line: string): ParsedLine {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { error: 'invalid JSON' };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { error: 'not a JSON object' };
  const e = v as Record<string, unknown>;
  if (!Number.isSafeInteger(e.seq) || typeof e.time !== 'string' || typeof e.type !== 'string'
    || typeof e.prevHash !== 'string' || typeof e.hash !== 'string') {
    return { error: 'not an audit entry (seq, time, type, prevHash or hash missing)' };
  }
  return { entry: e as unknown as AuditEntry };
}

/** A line that is an entry and whose hash matches its content. */
export function isSelfConsistent(entry: AuditEntry): boolean {
  return entryHash(entry) === entry.hash;
}
