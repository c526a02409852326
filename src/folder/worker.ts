import { parentPort, workerData } from 'node:worker_threads';
import { Engine } from '../deid/deidentify';
import { fromWire, WireSettings } from '../deid/settings-wire';
import { ReadBuffer } from '../io/instance-file';
import type { ExtractOptions } from './extract-file';
import { serveFileQueue } from './file-queue';
import { FileResult, FolderTarget, processFile } from './process-file';

/** Worker thread: one Engine, files claimed from the shared list, results back in batches. */
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

const failed = (rel: string, err: unknown): FileResult =>
  // Even the quarantine copy failed (disk full, permissions): report, never die.
  ({ rel, outcome: 'quarantined', code: 'INTERNAL_ERROR', reason: `could not quarantine: ${(err as Error).message}`, bytesIn: 0, bytesOut: 0 });

if (init.extract) {
  // The pixel codecs (WASM) load only for extract jobs: deidentify workers stay small.
  const opts = init.extract;
  const extract = import('./extract-file');
  extract.catch(() => undefined); // a failed load is reported per file below
  serveFileQueue(parentPort!, async (rel) => {
    try {
      return await (await extract).extractFile(engine, rel, init.target, opts);
    } catch (err) {
      return failed(rel, err);
    }
  });
} else {
  serveFileQueue(parentPort!, (rel) => {
    try {
      return processFile(engine, rel, init.target, readBuffer);
    } catch (err) {
      return failed(rel, err);
    }
  });
}
