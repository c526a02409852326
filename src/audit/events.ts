/**
 * What the gateway records in its audit log: one variant per event, told apart by `type`.
 *
 * The audit log is read by operators, shipped to log collectors (stdout) and kept for years, so
 * it must NEVER contain PHI:
 * - original identifiers (Study/Series/SOP Instance UIDs, PatientID, accession numbers...) appear
 *   only as keyed hashes, computed by the caller with `Pseudonymizer.keyedHash` from
 *   src/deid/pseudonyms.ts (HMAC under the project secret: someone holding an original UID and the
 *   secret can find its entries; someone holding only the log learns nothing). `AuditLog.write`
 *   refuses a `...Hash` field that is not a hex digest, so a raw UID cannot slip into one;
 * - new (de-identified) UIDs are written in clear: they are what the research side sees;
 * - free text (`reason`, `error`) must be built from codes and keyed hashes, never from values
 *   of the dataset (the engine's reasons already follow this rule). The log cannot check this.
 * - AE titles and peer addresses identify devices, not patients, and are kept in clear.
 *
 * The fields `seq`, `time`, `prevHash` and `hash` are added by the log (see AuditEntry) and are
 * reserved: no event may use them.
 */

/** A keyed hash from `Pseudonymizer.keyedHash` (32 hex digits), or a SHA-256 (64 hex digits). */
export type HexHash = string;

export type AuditEvent =
  | { type: 'gateway.start'; version: string; configHash: HexHash }
  | { type: 'gateway.stop'; reason: string }
  /** `configHash`, not `hash`: `hash` is the entry's own chain hash (reserved). */
  | { type: 'config.loaded'; configHash: HexHash }
  | { type: 'association.accepted'; callingAE: string; calledAE: string; peer: string }
  | { type: 'association.rejected'; callingAE: string; calledAE: string; peer: string; reason: string }
  | { type: 'instance.received'; spoolId: string; callingAE: string; bytes: number; originalSopHash?: HexHash; job?: string }
  | {
      type: 'instance.deidentified';
      spoolId: string;
      route: string;
      profile: string;
      options: string[];
      /** Counts of elements removed, replaced (emptied, dummied, cleaned, shifted) and remapped. */
      removed: number;
      replaced: number;
      remapped: number;
      newStudyUid: string;
      newSeriesUid: string;
      newSopInstanceUid: string;
      /** SHA-256 of the Pixel Data value before and after: equal unless pixels were cleaned. */
      /** Absent for objects without Pixel Data (e.g. SR under the basic profile). */
      pixelSha256Before?: HexHash;
      pixelSha256After?: HexHash;
      originalStudyHash: HexHash;
      originalSopHash: HexHash;
    }
  | {
      type: 'instance.forwarded';
      spoolId: string;
      destination: string;
      newSopInstanceUid: string;
      /** The destination's status code: HTTP for STOW-RS, DIMSE for C-STORE, 0 for a folder. */
      status: number;
      attempts: number;
    }
  | { type: 'instance.retry'; spoolId: string; destination: string; attempt: number; delayMs: number; error: string }
  | { type: 'instance.quarantined'; spoolId: string; stage: string; code: string; reason: string }
  | { type: 'instance.dropped'; spoolId: string; route: string; reason: string }
  /** A route produced no output for a stated reason (e.g. pixel-only and no Pixel Data). */
  | { type: 'instance.skipped'; spoolId: string; route: string; code: string; reason: string }
  | { type: 'quarantine.released'; spoolId: string; by: string }
  | { type: 'quarantine.purged'; spoolId: string; by: string }
  | { type: 'api.unauthorized'; method: string; path: string; peer: string }
  /**
   * An export job was asked for. `criteria` says which query fields were used and how many
   * values each list had (the values are PHI: only their keyed hash `queryHash` is kept).
   */
  | { type: 'export.created'; job: string; by: string; source: string; route: string; profile: string; criteria: Record<string, number | string>; queryHash: HexHash }
  | { type: 'export.started'; job: string; resumed: boolean }
  /** The query's result: how many studies, and their keyed hashes. */
  | { type: 'export.found'; job: string; studies: number; studyHashes: HexHash[] }
  | { type: 'export.retrieved'; job: string; studyHash: HexHash; seriesHash: HexHash; instances: number; missing: number; code?: string }
  /** The series of a study could not be listed (after retries): none of it was retrieved. */
  | { type: 'export.study-failed'; job: string; studyHash: HexHash; code: string }
  /** A job folder without a readable job.json, found at start and left alone. */
  | { type: 'export.unreadable'; job: string }
  | {
      type: 'export.finished';
      job: string;
      state: string;
      studies: number;
      instancesFound: number;
      instancesDone: number;
      instancesFailed: number;
      bytes: number;
      manifestSha256?: HexHash;
      error?: string;
    }
  | { type: 'export.cancelled'; job: string; by: string }
  /**
   * Written by the log itself at start when the current file ended in a torn line (a crash or
   * power loss in the middle of a write): the torn bytes are cut off so the chain stays
   * verifiable, and this entry records how many and their SHA-256.
   */
  | { type: 'audit.recovered'; file: string; discardedBytes: number; discardedSha256: HexHash };

export type AuditEventType = AuditEvent['type'];

/** Added by the log to every event; covered by the hash chain. */
export interface AuditEntryMeta {
  /** 1 for the very first entry, then +1 per entry, across restarts and rotated files. */
  seq: number;
  /** ISO 8601 UTC time of the write. */
  time: string;
  /** `hash` of the previous entry; 64 zeros for the first entry of a chain. */
  prevHash: string;
  /** sha256(prevHash + canonical JSON of this entry without `hash`), hex. */
  hash: string;
}

export type AuditEntry = AuditEvent & AuditEntryMeta;

export const RESERVED_FIELDS: readonly string[] = ['seq', 'time', 'prevHash', 'hash'];
