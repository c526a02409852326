import { createHmac } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return bits > 0 ? out + BASE32[(value << (5 - bits)) & 31] : out;
}

/**
 * Keyed, deterministic pseudonyms. Every replica and every re-run with the same secret
 * derives the same values, so no mapping table has to be stored or shared. Each use has its
 * own domain label so a UID hash can never equal a patient hash.
 */
export class Pseudonymizer {
  private readonly uidCache = new Map<string, string>();
  private readonly patientCache = new Map<string, string>();

  constructor(private readonly secret: Buffer) {
    if (secret.length < 16) throw new Error('pseudonymization secret must be at least 16 bytes');
  }

  mac(domain: string, value: string): Buffer {
    return createHmac('sha256', this.secret).update(domain).update('\0').update(value, 'latin1').digest();
  }

  /** A keyed hash for logs and audit: lets you find an original identifier without revealing it. */
  keyedHash(value: string): string {
    return this.mac('audit', value).subarray(0, 16).toString('hex');
  }

  /** UID -> 2.25.<decimal of 128 bits> (PS3.5 B.2): at most 44 characters. */
  uid(original: string): string {
    let uid = this.uidCache.get(original);
    if (uid === undefined) {
      uid = `2.25.${BigInt(`0x${this.mac('uid', original).subarray(0, 16).toString('hex')}`).toString(10)}`;
      if (this.uidCache.size > 100_000) this.uidCache.clear();
      this.uidCache.set(original, uid);
    }
    return uid;
  }

  /** PatientID/PatientName pseudonym: prefix + 16 base32 characters (80 bits). */
  patient(patientKey: string, prefix: string): string {
    // A folder holds hundreds of instances per patient: one HMAC per patient, not per file.
    let hash = this.patientCache.get(patientKey);
    if (hash === undefined) {
      hash = base32(this.mac('patient', patientKey).subarray(0, 10));
      if (this.patientCache.size > 100_000) this.patientCache.clear();
      this.patientCache.set(patientKey, hash);
    }
    return prefix + hash;
  }

  /** A whole number of days in [min, max], fixed per patient, never 0 unless the range is {0}. */
  dateOffsetDays(patientKey: string, range: { min: number; max: number }): number {
    const span = range.max - range.min + 1;
    const n = this.mac('date-shift', patientKey).readUInt32BE(0);
    const days = range.min + (n % span);
    if (days === 0 && span > 1) return days + 1 <= range.max ? 1 : -1;
    return days;
  }
}
