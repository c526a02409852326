import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';

let counter = 0;

/**
 * Entry ids sort by creation time as plain strings (fixed-width base 36 fields), so the oldest
 * entry is the smallest name; pid + counter + random keep them unique across processes.
 */
export function newEntryId(): string {
  counter = (counter + 1) % 36 ** 6;
  const time = Date.now().toString(36).padStart(9, '0');
  const rand = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, '0');
  return `${time}-${process.pid.toString(36)}-${counter.toString(36).padStart(6, '0')}-${rand}`;
}

/** Names we accept as entry ids when listing folders: no separators, no leading dot. */
export const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A rename or unlink is only durable once the directory holding it is fsync'd. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * fsync of the spool's few directories through handles kept open: a commit fsyncs a directory
 * once or twice, and opening and closing it each time was a measurable share of the gateway's
 * main thread (bench:gateway profile).
 */
export class DirSyncer {
  private readonly handles = new Map<string, Promise<fsp.FileHandle>>();

  async sync(dir: string): Promise<void> {
    let h = this.handles.get(dir);
    if (!h) {
      h = fsp.open(dir, 'r');
      this.handles.set(dir, h);
      h.catch(() => this.handles.delete(dir));
    }
    await (await h).sync();
  }

  async close(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.allSettled(all.map(async (h) => (await h).close()));
  }
}

/** Removes a file that may already be gone: unlink without rm's lstat first. */
export async function unlinkIfThere(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

export function fsyncDirSync(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes a complete file (optionally fsync'd) at `file`; the caller renames it into place. */
export async function writeFileDurable(file: string, data: string | Buffer, fsync: boolean): Promise<void> {
  const h = await fsp.open(file, 'w', 0o644);
  try {
    await h.writeFile(data);
    if (fsync) await h.sync();
  } finally {
    await h.close();
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}
