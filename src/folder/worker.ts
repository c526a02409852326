import { parentPort, workerData } from 'node:worker_threads';
import { Engine } from '../deid/deidentify';
import { fromWire, WireSettings } from '../deid/settings-wire';
import type { ExtractOptions } from './extract-file';
import { FileResult, FolderTarget, processFile } from './process-file';

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

parentPort!.on('message', async (msg: { id: number; rel: string }) => {
  let result: FileResult;
  try {
    // The pixel codecs (WASM) load only for extract jobs: deidentify workers stay small.
    result = init.extract
      ? await (await import('./extract-file')).extractFile(engine, msg.rel, init.target, init.extract)
      : processFile(engine, msg.rel, init.target);
  } catch (err) {
    // Even the quarantine copy failed (disk full, permissions): report, never die.
    result = { rel: msg.rel, outcome: 'quarantined' as const, code: 'INTERNAL_ERROR', reason: `could not quarantine: ${(err as Error).message}`, bytesIn: 0, bytesOut: 0 };
  }
  parentPort!.postMessage({ id: msg.id, result });
});
