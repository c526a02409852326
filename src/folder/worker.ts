import { parentPort, workerData } from 'node:worker_threads';
import { Engine } from '../deid/deidentify';
import { fromWire, WireSettings } from '../deid/settings-wire';
import type { ExtractOptions } from './extract-file';
import { ReadBuffer } from '../io/instance-file';
import { FileResult, FolderTarget, processFile } from './process-file';
import { serveWorker } from './worker-pool';

/** Worker thread: one Engine, files in, results out. All heavy work stays off the main loop. */
interface Init {
  settings: WireSettings;
  secret: Uint8Array;
  target: FolderTarget;
  /** Set for `extract` jobs. */
  extract?: ExtractOptions;
}

const init = workerData as Init;
const engine = new Engine(fromWire(init.settings), Buffer.from(init.secret));
const readBuffer = new ReadBuffer();

serveWorker<{ rel: string }, FileResult>(parentPort!, async ({ rel }) => {
  try {
    // The pixel codecs (WASM) load only for extract jobs: deidentify workers stay small.
    return init.extract
      ? await (await import('./extract-file')).extractFile(engine, rel, init.target, init.extract)
      : processFile(engine, rel, init.target, readBuffer);
  } catch (err) {
    // Even the quarantine copy failed (disk full, permissions): report, never die.
    return { rel, outcome: 'quarantined', code: 'INTERNAL_ERROR', reason: `could not quarantine: ${(err as Error).message}`, bytesIn: 0, bytesOut: 0 };
  }
});
