import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsyncDirSync, SAFE_ID } from './durable';
import { SpoolState } from './types';

export const STATES: readonly SpoolState[] = ['incoming', 'processing', 'quarantine'];

/** Ids of the `.<ext>` files of a folder, sorted (ids sort by age). */
export function idsIn(dir: string, ext: '.dcm' | '.json'): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith(ext))
    .map((n) => n.slice(0, -ext.length))
    .filter((id) => SAFE_ID.test(id))
    .sort();
}

/**
 * Brings the spool back to a consistent state after a crash at any point (see README.md).
 * Every step is idempotent, so a crash during recovery is just another crash.
 */
export function recover(root: string, fsync: boolean): void {
  const dir = (s: SpoolState | 'tmp'): string => path.join(root, s);

  // 1. tmp/ holds only what was never committed, so never acknowledged: drop it.
  for (const name of fs.readdirSync(dir('tmp'))) fs.rmSync(path.join(dir('tmp'), name), { recursive: true, force: true });

  // 2. Work in flight when we died is redone from the start (outputs are deterministic).
  for (const id of idsIn(dir('processing'), '.dcm')) {
    const json = path.join(dir('processing'), `${id}.json`);
    if (fs.existsSync(json)) fs.renameSync(json, path.join(dir('incoming'), `${id}.json`));
    fs.renameSync(path.join(dir('processing'), `${id}.dcm`), path.join(dir('incoming'), `${id}.dcm`));
  }

  // 3. A sidecar without its .dcm beside it comes from a move cut in half: join it to its .dcm
  //    when that one has none, otherwise (or when the .dcm is gone) it is stale: delete it.
  const has = (s: SpoolState, id: string, ext: string): boolean => fs.existsSync(path.join(dir(s), id + ext));
  for (const s of STATES) {
    for (const id of idsIn(dir(s), '.json')) {
      if (has(s, id, '.dcm')) continue;
      const home = STATES.find((o) => o !== s && has(o, id, '.dcm') && !has(o, id, '.json'));
      if (home) fs.renameSync(path.join(dir(s), `${id}.json`), path.join(dir(home), `${id}.json`));
      else fs.rmSync(path.join(dir(s), `${id}.json`), { force: true });
    }
  }

  if (fsync) for (const s of [...STATES, 'tmp' as const]) fsyncDirSync(dir(s));
}
