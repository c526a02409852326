import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeidSettings } from '../deid/settings';
import { toWire } from '../deid/settings-wire';
import type { ExtractOptions } from './extract-file';
import { ManifestRow, renderManifest } from './manifest';
import { FileQueuePool } from './file-queue';
import { FolderTarget } from './process-file';
import { createProgress } from './progress';
import { Summary, SummaryBuilder } from './summary';
import { walkFiles } from './walk';

export interface FolderJob {
  input: string;
  output: string;
  settings: DeidSettings;
  secret: Buffer;
  jobs?: number;
  progress?: boolean;
  /** Extract pixel arrays instead of writing de-identified DICOM. */
  extract?: ExtractOptions;
}

/** Where quarantined originals of a job go: beside the output, never inside it. */
export const quarantineDirFor = (output: string): string => `${path.resolve(output)}.quarantine`;

/**
 * De-identifies every DICOM file under `input` into `output`, in parallel worker threads
 * that claim files from one shared list. Deterministic: a re-run rewrites the same paths.
 */
export async function runFolderJob(job: FolderJob): Promise<Summary> {
  const inRoot = path.resolve(job.input);
  const outRoot = path.resolve(job.output);
  if (!fs.statSync(inRoot).isDirectory()) throw new Error(`input ${job.input} is not a directory`);
  if (outRoot === inRoot || inRoot.startsWith(outRoot + path.sep)) throw new Error('the output folder must not be the input folder or contain it');
  const target: FolderTarget = { inRoot, outRoot, quarantineRoot: quarantineDirFor(outRoot) };
  fs.mkdirSync(outRoot, { recursive: true });

  const size = Math.max(1, job.jobs ?? os.availableParallelism());
  // Workers start (and load the engine) while the input is being listed.
  const pool = new FileQueuePool(path.join(__dirname, 'worker.js'), size, {
    settings: toWire(job.settings),
    secret: new Uint8Array(job.secret),
    target,
    extract: job.extract,
  });
  const summary = new SummaryBuilder();
  const progress = createProgress(job.extract ? 'extract' : 'deidentify', process.stderr);
  const manifest: ManifestRow[] = [];
  try {
    // Listing first costs little and gives the progress bar a total (so a rate and an ETA).
    const files: string[] = [];
    for await (const rel of walkFiles(inRoot, [outRoot, target.quarantineRoot])) files.push(rel);
    let done = 0;
    await pool.run(files, (results) => {
      for (const r of results) {
        summary.add(r);
        if (r.manifest) manifest.push(r.manifest);
      }
      done += results.length;
      if (job.progress !== false) progress.tick(done, files.length);
    });
  } finally {
    progress.stop();
    await pool.close();
  }
  if (job.extract) fs.writeFileSync(path.join(outRoot, 'manifest.csv'), renderManifest(manifest));
  return summary.finish();
}
