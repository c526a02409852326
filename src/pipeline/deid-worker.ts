import { parentPort, workerData } from 'node:worker_threads';
import { Config } from '../config/schema';
import { serveWorker } from '../folder/worker-pool';
import { EntryProcessor, EntryResult, EntryTask } from './process-entry';
import { lowerThreadPriority } from './thread-priority';

/** Worker thread of the gateway's de-identify stage: keeps the event loop of DIMSE/HTTP free. */
interface Init {
  config: Config;
  secret: Uint8Array;
  outDir: string;
  lookup?: [string, string][];
}

const init = workerData as Init;
lowerThreadPriority(init.config.spool.workerNice);
const processor = new EntryProcessor(init.config, Buffer.from(init.secret), init.outDir, init.lookup && new Map(init.lookup));

serveWorker<EntryTask, EntryResult>(
  parentPort!,
  (task) => {
    try {
      return processor.process(task);
    } catch (err) {
      return { kind: 'unreadable', code: 'INTERNAL_ERROR', reason: (err as Error).message };
    }
  },
  // Outputs in memory (outputBytes: buffers of their own) move to the main thread without a copy.
  (result) => (result.kind === 'routed' ? result.results.flatMap((r) => (r.kind === 'output' && r.bytes ? [r.bytes.buffer as ArrayBuffer] : [])) : []),
);
