// Worker for file-queue.test.ts: "writes" every name, dies on names starting with "crash".
import { parentPort } from 'node:worker_threads';
import { serveFileQueue } from '../../src/folder/file-queue';

serveFileQueue(parentPort!, (rel) => {
  if (rel.startsWith('crash')) process.exit(3);
  return { rel, outcome: 'written', bytesIn: rel.length, bytesOut: 0 };
});
