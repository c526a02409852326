import * as fs from 'node:fs';
import { isSelfConsistent, parseLine, ZERO_HASH } from './chain';
import { linesForward } from './files';

export { auditFilesFor } from './files';

export interface VerifyResult {
  ok: boolean;
  /** Entries checked and found good (all of them when ok). */
  entries: number;
  /** The first line that breaks the chain; `line` is 1-based (0: the file could not be read). */
  firstBroken?: { file: string; line: number; reason: string };
}

/**
 * Checks one hash chain spread over `files`, given OLDEST FIRST (see `auditFilesFor`).
 *
 * Each line must be an entry whose hash matches its content (else it was edited), whose prevHash
 * is the previous entry's hash (else entries were deleted, inserted or reordered; across files,
 * a rotated file is missing) and whose seq is the previous seq + 1; the very first entry must
 * start from 64 zeros with seq 1 (else the oldest entries or files are gone).
 *
 * What no chain can show: entries cut from the END of the newest file leave a shorter, valid
 * chain. The copy of every line on stdout (in the log collector) is the witness for that.
 */
export function verifyAuditFiles(files: string[]): VerifyResult {
  let expectedPrev = ZERO_HASH;
  let expectedSeq = 1;
  let entries = 0;
  let lastFileWithEntries: string | undefined;
  const broken = (file: string, line: number, reason: string): VerifyResult => ({ ok: false, entries, firstBroken: { file, line, reason } });

  for (const file of files) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      return broken(file, 0, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      let lineNo = 0;
      let firstInFile = true;
      for (const { text, terminated } of linesForward(fd)) {
        lineNo++;
        const parsed = parseLine(text.toString('utf8'));
        if (!parsed.entry) {
          const what = text.length === 0 ? 'empty line' : parsed.error!;
          return broken(file, lineNo, terminated ? what : `truncated last line (${what})`);
        }
        const e = parsed.entry;
        if (!isSelfConsistent(e)) return broken(file, lineNo, 'hash mismatch: the entry was edited');
        if (e.prevHash !== expectedPrev) {
          if (entries === 0) return broken(file, lineNo, 'the chain does not start from zeros: older entries or files are missing');
          if (firstInFile) return broken(file, lineNo, `the chain does not continue from ${lastFileWithEntries}: a file between them is missing or was cut`);
          return broken(file, lineNo, 'prevHash does not match the previous entry: an entry was deleted, inserted or reordered');
        }
        if (e.seq !== expectedSeq) return broken(file, lineNo, `seq ${e.seq} where ${expectedSeq} was expected: entries are missing or reordered`);
        expectedPrev = e.hash;
        expectedSeq++;
        entries++;
        firstInFile = false;
        lastFileWithEntries = file;
      }
    } catch (err) {
      return broken(file, 0, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    } finally {
      fs.closeSync(fd);
    }
  }
  return { ok: true, entries };
}
