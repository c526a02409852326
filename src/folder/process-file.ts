import * as fs from 'node:fs';
import * as path from 'node:path';
import { DicomParseError } from '../dicom/errors';
import { Engine } from '../deid/deidentify';
import { openInstance, ReadBuffer, writeOutputFile } from '../io/instance-file';
import { ManifestRow } from './manifest';

export type FileOutcome = 'written' | 'skipped' | 'quarantined' | 'ignored';

export interface FileResult {
  rel: string;
  outcome: FileOutcome;
  code?: string;
  reason?: string;
  bytesIn: number;
  bytesOut: number;
  /** Output path relative to the output root (written files only). */
  output?: string;
  /** Extract jobs: the manifest row of the written array. */
  manifest?: ManifestRow;
}

export interface FolderTarget {
  inRoot: string;
  outRoot: string;
  quarantineRoot: string;
}

/** Path-safe form of a pseudonym or UID (lookup-table subject IDs may hold anything). */
export const safeName = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || '_';

/**
 * De-identifies one file of a folder job: the output goes to
 * OUT/<patient>/<study>/<series>/<sop>.dcm, a failure copies the original with a reason file
 * to the quarantine folder. Files that are not DICOM at all are ignored, not quarantined.
 */
export function processFile(engine: Engine, rel: string, target: FolderTarget, reuse?: ReadBuffer): FileResult {
  const input = path.join(target.inRoot, rel);
  let bytesIn = 0;
  try {
    // The output is written before this returns, so a per-thread read buffer may be reused.
    const opened = openInstance(input, reuse);
    bytesIn = opened.size;
    try {
      const outcome = engine.process(opened.instance);
      if (outcome.kind === 'skip') return { rel, outcome: 'skipped', code: outcome.code, reason: outcome.reason, bytesIn, bytesOut: 0 };
      if (outcome.kind === 'quarantine') return quarantineFile(engine, rel, target, outcome.code, outcome.reason, bytesIn);
      const o = outcome.output;
      const outRel = path.join(safeName(o.patientPseudonym), safeName(o.studyUid), safeName(o.seriesUid), `${safeName(o.sopInstanceUid)}.dcm`);
      const outPath = path.join(target.outRoot, outRel);
      ensureDir(path.dirname(outPath));
      const bytesOut = writeOutputFile(outPath, o.meta, o.parts);
      return { rel, outcome: 'written', bytesIn, bytesOut, output: outRel };
    } finally {
      opened.close();
    }
  } catch (err) {
    if (err instanceof DicomParseError && err.code === 'NOT_DICOM') return { rel, outcome: 'ignored', code: err.code, reason: err.message, bytesIn, bytesOut: 0 };
    bytesIn ||= fileSize(input);
    const code = err instanceof DicomParseError ? err.code : 'INTERNAL_ERROR';
    return quarantineFile(engine, rel, target, code, (err as Error).message, bytesIn);
  }
}

const fileSize = (file: string): number => {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
};

const made = new Set<string>();
/** mkdir -p, remembered: a series folder receives hundreds of files. */
export function ensureDir(dir: string): void {
  if (made.has(dir)) return;
  fs.mkdirSync(dir, { recursive: true });
  if (made.size > 10_000) made.clear();
  made.add(dir);
}

/**
 * Quarantine holds the original (it is PHI): a copy named by a keyed hash of its path, and a
 * JSON reason beside it. It lives outside the output folder by construction.
 */
export function quarantineFile(engine: Engine, rel: string, target: FolderTarget, code: string, reason: string, bytesIn: number): FileResult {
  const id = engine.pseudo.keyedHash(`quarantine:${rel}`);
  fs.mkdirSync(target.quarantineRoot, { recursive: true });
  const base = path.join(target.quarantineRoot, id);
  fs.copyFileSync(path.join(target.inRoot, rel), `${base}.dcm`);
  const record = { id, stage: 'deidentify', code, reason, input: rel, bytes: bytesIn };
  fs.writeFileSync(`${base}.json`, `${JSON.stringify(record, null, 2)}\n`);
  return { rel, outcome: 'quarantined', code, reason, bytesIn, bytesOut: 0 };
}
