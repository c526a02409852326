/**
 * The floor of any Node engine for a folder job: the file I/O the CLI (`deidentify IN OUT
 * --jobs N`) cannot avoid, with no DICOM work. Same shape as the CLI: N worker threads started
 * while the main thread walks the input (with the CLI's own walk), each worker reading a file
 * whole into one reused buffer (open, fstat, read, close) and writing it through a temp file +
 * rename, output folders made lazily and remembered per folder. Whatever a real engine scores
 * above this is the cost of parsing and de-identifying.
 * Usage: node dist/bench/copy-floor.js IN OUT JOBS
 * Prints one JSON line {files, copied, bytes, seconds} (seconds: walk to last rename, startup
 * excluded; the benchmark times the whole process instead, like the CLI).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMainThread, parentPort, threadId, Worker } from 'node:worker_threads';
import { walkFiles } from '../src/folder/walk';
import { now } from './util';

/** Main -> worker, once. */
interface Start {
  inRoot: string;
  outRoot: string;
  /**
   * The relative paths. The CLI packs its list into shared memory; a structured-clone copy of a
   * few thousand short names per worker costs microseconds, so the floor stays a floor.
   */
  names: string[];
  /** Int32 next-file index, claimed with Atomics.add by every worker. */
  next: SharedArrayBuffer;
}

/** Worker -> main, once, when the list is used up. */
interface Done {
  files: number;
  bytes: number;
}

export interface CopyFloorResult {
  files: number;
  copied: number;
  bytes: number;
  seconds: number;
}

/** The worker's loop: claim, read whole, write temp + rename, until no file is left. */
function copyAll(s: Start): Done {
  const next = new Int32Array(s.next);
  // One buffer per thread, grown as needed, like the CLI's ReadBuffer: no allocation per file.
  let buf = Buffer.allocUnsafe(1 << 20);
  const made = new Set<string>();
  // One file at a time per thread, so pid + thread id is a unique temp name.
  const tmpSuffix = `.${process.pid}.${threadId}.tmp`;
  const done: Done = { files: 0, bytes: 0 };
  for (let i = Atomics.add(next, 0, 1); i < s.names.length; i = Atomics.add(next, 0, 1)) {
    const rel = s.names[i];
    const fd = fs.openSync(path.join(s.inRoot, rel), 'r');
    let size: number;
    try {
      size = fs.fstatSync(fd).size;
      if (size > buf.length) buf = Buffer.allocUnsafe(Math.max(size, 2 * buf.length));
      for (let got = 0; got < size; ) {
        const n = fs.readSync(fd, buf, got, size - got, got);
        if (!n) throw new Error(`${rel} shrank while being read`);
        got += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    const target = path.join(s.outRoot, rel);
    const dir = path.dirname(target);
    // mkdir -p once per folder, as the CLI's ensureDir: a series folder receives many files.
    if (!made.has(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    const tmp = target + tmpSuffix;
    const out = fs.openSync(tmp, 'w', 0o644);
    try {
      for (let off = 0; off < size; ) off += fs.writeSync(out, buf, off, size - off);
    } finally {
      fs.closeSync(out);
    }
    fs.renameSync(tmp, target);
    done.files++;
    done.bytes += size;
  }
  return done;
}

async function main(inArg: string, outArg: string, jobs: number): Promise<CopyFloorResult> {
  const t0 = now();
  const inRoot = path.resolve(inArg);
  const outRoot = path.resolve(outArg);
  fs.mkdirSync(outRoot, { recursive: true });
  // Workers start while the input is listed, as the CLI's pool does.
  const workers = Array.from({ length: jobs }, () => new Worker(__filename));
  const names: string[] = [];
  for await (const rel of walkFiles(inRoot, [outRoot])) names.push(rel);
  const start: Start = { inRoot, outRoot, names, next: new SharedArrayBuffer(4) };
  const results = await Promise.all(workers.map((w) => new Promise<Done>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`copy worker exited with code ${code} before reporting`)));
    w.postMessage(start);
  })));
  return {
    files: names.length,
    copied: results.reduce((n, r) => n + r.files, 0),
    bytes: results.reduce((n, r) => n + r.bytes, 0),
    seconds: now() - t0,
  };
}

if (isMainThread) {
  if (require.main === module) {
    const [inRoot, outRoot, jobsArg] = process.argv.slice(2);
    const jobs = Number(jobsArg);
    if (!inRoot || !outRoot || !Number.isInteger(jobs) || jobs < 1) {
      process.stderr.write('usage: node dist/bench/copy-floor.js IN OUT JOBS\n');
      process.exit(2);
    }
    main(inRoot, outRoot, jobs).then(
      (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
      (err: Error) => {
        process.stderr.write(`copy-floor failed: ${err.stack ?? err.message}\n`);
        process.exitCode = 1;
      },
    );
  }
} else {
  // `once`: with its only listener gone after the list is done, the worker exits by itself.
  parentPort!.once('message', (s: Start) => parentPort!.postMessage(copyAll(s)));
}
