import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { parseLine } from './chain';
import { AuditEntry } from './events';

/**
 * Open files, each read up to a fixed size. Taken synchronously, so a rotation (also synchronous,
 * in the same thread) cannot rename a file between listing and opening it, and a line being
 * appended after the snapshot is never read half-written.
 */
export interface Snapshot {
  parts: { fd: number; size: number }[];
}

export function takeSnapshot(files: { path: string; size?: number }[]): Snapshot {
  const parts: Snapshot['parts'] = [];
  try {
    for (const f of files) {
      const fd = fs.openSync(f.path, 'r');
      parts.push({ fd, size: f.size ?? fs.fstatSync(fd).size });
    }
  } catch (err) {
    releaseSnapshot({ parts });
    throw err;
  }
  return { parts };
}

export function releaseSnapshot(snap: Snapshot): void {
  for (const p of snap.parts) fs.closeSync(p.fd);
}

/** Every entry of the snapshot in order; lines that are not entries are skipped (checking them is `verify`'s job). */
export async function* entriesOf(snap: Snapshot): AsyncGenerator<AuditEntry> {
  for (const { fd, size } of snap.parts) {
    if (size === 0) continue;
    const stream = fs.createReadStream('', { fd, start: 0, end: size - 1, autoClose: false, encoding: 'utf8' });
    for await (const line of readline.createInterface({ input: stream, crlfDelay: Infinity })) {
      const { entry } = parseLine(line);
      if (entry) yield entry;
    }
  }
}

export async function findIn(snap: Snapshot, predicate: (e: AuditEntry) => boolean, limit = Infinity): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for await (const e of entriesOf(snap)) {
    if (predicate(e)) out.push(e);
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * Selects instances and returns their whole history (received, de-identified, forwarded, retries,
 * quarantine...), oldest first. Criteria are ANDed: `spoolId` picks one instance; `newStudyUid`
 * / `originalStudyHash` pick the instances whose `instance.deidentified` entry has that study.
 * The API answers `?studyUid=X` with the union of `{newStudyUid: X}` and
 * `{originalStudyHash: keyedHash(X)}`, so either the new or the original UID finds the study.
 */
export interface AuditQuery {
  newStudyUid?: string;
  originalStudyHash?: string;
  spoolId?: string;
}

export async function searchIn(snap: Snapshot, q: AuditQuery, limit = Infinity): Promise<AuditEntry[]> {
  if (q.newStudyUid === undefined && q.originalStudyHash === undefined && q.spoolId === undefined) {
    throw new TypeError('audit search needs newStudyUid, originalStudyHash or spoolId');
  }
  const spoolOf = (e: AuditEntry): string | undefined => ('spoolId' in e ? e.spoolId : undefined);
  let selected: Set<string>;
  if (q.newStudyUid === undefined && q.originalStudyHash === undefined) {
    selected = new Set([q.spoolId!]);
  } else {
    // First pass: the instances of the study. Their `received` entries come before the
    // `deidentified` one, hence a second pass for the history.
    selected = new Set();
    for await (const e of entriesOf(snap)) {
      if (e.type !== 'instance.deidentified') continue;
      if (q.newStudyUid !== undefined && e.newStudyUid !== q.newStudyUid) continue;
      if (q.originalStudyHash !== undefined && e.originalStudyHash !== q.originalStudyHash) continue;
      if (q.spoolId !== undefined && e.spoolId !== q.spoolId) continue;
      selected.add(e.spoolId);
    }
    if (selected.size === 0) return [];
  }
  return findIn(snap, (e) => {
    const id = spoolOf(e);
    return id !== undefined && selected.has(id);
  }, limit);
}
