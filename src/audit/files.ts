import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditEntry } from './events';
import { isSelfConsistent, parseLine } from './chain';

/**
 * Rotated siblings of an audit file (`audit.jsonl.1`, `.2`, ...), OLDEST FIRST: rotation shifts
 * `.n` to `.n+1`, so a higher number is older. Numbers are sorted, not counted, so a gap left
 * by a crash in the middle of a rotation does not hide or reorder anything.
 */
export function rotatedSiblings(file: string): string[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(`${base}.`) && /^[1-9]\d*$/.test(n.slice(base.length + 1)))
    .map((n) => ({ n: Number(n.slice(base.length + 1)), p: path.join(dir, n) }))
    .sort((a, b) => b.n - a.n)
    .map((x) => x.p);
}

/** The whole chain of an audit file in chronological order: its rotated siblings, then itself (when it exists). */
export function auditFilesFor(file: string): string[] {
  const files = rotatedSiblings(file);
  if (fs.existsSync(file)) files.push(file);
  return files;
}

/**
 * The lines of a file from the last to the first, with their byte offsets, read in chunks from
 * the end: finding where a 100 MB log ends must not read 100 MB. The first line yielded is what
 * follows the last newline (empty when the file ends with one).
 */
export function* linesBackward(fd: number, end: number, chunk = 64 * 1024): Generator<{ text: Buffer; start: number }> {
  let pos = end;
  let carry = Buffer.alloc(0);
  while (pos > 0) {
    const len = Math.min(chunk, pos);
    pos -= len;
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, pos);
    const data = carry.length ? Buffer.concat([buf, carry]) : buf;
    let segEnd = data.length;
    for (let i = data.lastIndexOf(10, segEnd - 1); i >= 0; i = i > 0 ? data.lastIndexOf(10, i - 1) : -1) {
      yield { text: data.subarray(i + 1, segEnd), start: pos + i + 1 };
      segEnd = i;
    }
    carry = data.subarray(0, segEnd);
  }
  yield { text: carry, start: 0 };
}

/** The last line of a file that is a self-consistent entry (parses, and its hash matches its content). */
export function lastValidEntry(file: string): AuditEntry | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    for (const { text } of linesBackward(fd, fs.fstatSync(fd).size)) {
      const { entry } = parseLine(text.toString('utf8'));
      if (entry && isSelfConsistent(entry)) return entry;
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The lines of a file from the first to the last, read in chunks (a rotated file may be larger
 * than the longest string V8 allows). `terminated` is false only for what follows the last
 * newline, which is yielded only when not empty.
 */
export function* linesForward(fd: number, chunk = 1024 * 1024): Generator<{ text: Buffer; terminated: boolean }> {
  let carry = Buffer.alloc(0);
  const buf = Buffer.alloc(chunk);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, chunk, null);
    if (n === 0) break;
    const data = Buffer.concat([carry, buf.subarray(0, n)]);
    let start = 0;
    for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, start)) {
      yield { text: data.subarray(start, i), terminated: true };
      start = i + 1;
    }
    carry = Buffer.from(data.subarray(start));
  }
  if (carry.length) yield { text: carry, terminated: false };
}
