import * as fs from 'node:fs';
import * as path from 'node:path';
import { safeName } from '../folder/process-file';
import { Destination, OutgoingInstance, SendResults } from './destination';
import { fileOf } from './outgoing';
import { PermanentError, TransientError } from './errors';

/** File-system errors that may go away by themselves (space freed, descriptors released). */
const TRANSIENT_FS_CODES = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EINTR', 'ETIMEDOUT', 'ESTALE']);

/**
 * The embedded default destination: a folder laid out exactly like the `deidentify` command's
 * output, `<path>/<patient pseudonym>/<study UID>/<series UID>/<SOP instance UID>.dcm`.
 * Each file is copied to a temporary name in the target folder, fsync'd, renamed into place
 * and the folder fsync'd, so a reader never sees a partial file and a resend (same UIDs)
 * replaces the file atomically.
 */
export class FolderDestination implements Destination {
  readonly root: string;

  constructor(
    readonly name: string,
    cfg: { path: string },
  ) {
    this.root = path.resolve(cfg.path);
  }

  /** Relative path of an instance under the root (the deidentify command's layout). */
  static relativePath(i: Pick<OutgoingInstance, 'patientPseudonym' | 'studyUid' | 'seriesUid' | 'sopInstanceUid'>): string {
    return path.join(safeName(i.patientPseudonym), safeName(i.studyUid), safeName(i.seriesUid), `${safeName(i.sopInstanceUid)}.dcm`);
  }

  async send(instances: OutgoingInstance[]): Promise<SendResults> {
    const results: SendResults = new Map();
    for (const inst of instances) {
      try {
        await this.copyOne(inst);
        results.set(inst.sopInstanceUid, null);
      } catch (err) {
        results.set(inst.sopInstanceUid, fsError(err, `${this.name}: ${inst.sopInstanceUid}`));
      }
    }
    return results;
  }

  private async copyOne(inst: OutgoingInstance): Promise<void> {
    const target = path.join(this.root, FolderDestination.relativePath(inst));
    const dir = path.dirname(target);
    await fs.promises.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
    try {
      if (!inst.bytes) await fs.promises.copyFile(fileOf(inst), tmp);
      const fh = await fs.promises.open(tmp, inst.bytes ? 'wx' : 'r+', 0o644);
      try {
        if (inst.bytes) await fh.writeFile(inst.bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, target);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
    await syncDir(dir);
  }

  async probe(): Promise<boolean> {
    try {
      await fs.promises.mkdir(this.root, { recursive: true });
      await fs.promises.access(this.root, fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    /* nothing held */
  }
}

async function syncDir(dir: string): Promise<void> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on a directory (EINVAL/EISDIR); the rename is still done.
  } finally {
    await fh?.close();
  }
}

function fsError(err: unknown, what: string): Error {
  const code = (err as NodeJS.ErrnoException).code ?? 'FS_ERROR';
  const message = `${what}: ${(err as Error).message}`;
  return TRANSIENT_FS_CODES.has(code) ? new TransientError(code, message, { cause: err }) : new PermanentError(`FS_${code}`, message, { cause: err });
}
