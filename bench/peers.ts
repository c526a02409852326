/**
 * The peers a gateway benchmark starts (Orthanc, the gateway process) and their clean-up, shared
 * by bench/gateway.ts and bench/export.ts: everything started is registered and stopped in
 * reverse order at the end, also on error or SIGINT/SIGTERM (runBench).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { GatewayProcess, startGatewayProcess, testConfig } from '../test/support/gateway-process';
import { hasOrthanc, Orthanc, startOrthanc } from '../test/support/orthanc';
import { startProfiledGateway } from './gateway-profile';
import { parseMetrics } from './gateway-proc';
import { listFiles, rmrf, run } from './util';

type Log = (s: string) => void;

/** Everything started, stopped in reverse order at the end (also on error or SIGINT). */
const cleanups: Array<{ what: string; fn: () => Promise<void> }> = [];

export async function cleanupAll(log: Log): Promise<void> {
  while (cleanups.length) {
    const c = cleanups.pop()!;
    try {
      await c.fn();
    } catch (err) {
      log(`clean-up of ${c.what} failed: ${(err as Error).message}`);
    }
  }
}

/** Registers a clean-up and returns a function that runs it now (once). */
export function onCleanup(what: string, fn: () => Promise<void>): () => Promise<void> {
  const entry = { what, fn };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i < 0) return;
    cleanups.splice(i, 1);
    await fn();
  };
}

/**
 * Runs a benchmark's main(): every registered peer is stopped when it ends, fails, or the process
 * gets SIGINT/SIGTERM (exit 130); the exit code is main()'s, or 1 on an error.
 */
export function runBench(main: () => Promise<number>, log: Log): void {
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      log(`${sig}: stopping every peer ...`);
      void cleanupAll(log).finally(() => process.exit(130));
    });
  }

  main()
    .then(async (code) => {
      await cleanupAll(log);
      process.exitCode = code;
    })
    .catch(async (err: Error) => {
      log(`error: ${err.stack ?? err.message}`);
      await cleanupAll(log);
      process.exitCode = 1;
    });
}

/** Throws unless the CLI is built, the DCMTK `tools` are installed and Orthanc (with DICOMweb) is. */
export function checkPrerequisites(repo: string, tools: string[] = []): void {
  const cli = path.join(repo, 'dist/src/cli/main.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: build first (npm run build)`);
  for (const tool of tools) {
    if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} is missing: apt-get install dcmtk (scripts/install-test-deps.sh)`);
  }
  if (!hasOrthanc()) throw new Error('Orthanc or its DICOMweb plugin is missing: scripts/install-test-deps.sh');
}

/** A fresh Orthanc, stopped by `dispose` (or at the end). */
export async function orthanc(): Promise<{ o: Orthanc; dispose: () => Promise<void> }> {
  const o = await startOrthanc({ startTimeoutMs: 60_000 });
  return { o, dispose: onCleanup(`Orthanc pid ${o.pid}`, () => o.dispose()) };
}

/** SIGTERM, SIGKILL after 20 s. */
async function stopGateway(g: GatewayProcess): Promise<void> {
  const t = setTimeout(() => void g.kill(), 20_000);
  await g.stop();
  clearTimeout(t);
}

/**
 * The gateway config of the tests (testConfig) with `destination` as its research route and the
 * shipped spool defaults (workers, maxInFlight, fsync on unless `fsync` is false): only the
 * folder is ours.
 */
export function benchGatewayConfig(dir: string, destination: Record<string, unknown>, fsync = true): Record<string, unknown> {
  const base = testConfig(dir, { research: destination });
  return { ...base, spool: { dir: path.join(dir, 'spool'), ...(fsync ? {} : { fsync: false }) } };
}

/** A fresh gateway process in `dir` (under `node --cpu-prof` with `profileDir`); `dispose` stops it and removes `dir`. */
export async function gateway(dir: string, config: Record<string, unknown>, profileDir?: string): Promise<{ g: GatewayProcess; dispose: () => Promise<void> }> {
  const g = profileDir ? await startProfiledGateway(dir, config, profileDir) : await startGatewayProcess(dir, config);
  return {
    g,
    dispose: onCleanup(`gateway pid ${g.pid}`, async () => {
      await stopGateway(g);
      rmrf(dir);
    }),
  };
}

/** A fresh gateway (see gateway()) for the span of `fn`; stopped, and `dir` removed, after it. */
export async function withGateway<T>(dir: string, config: Record<string, unknown>, profileDir: string | undefined, fn: (g: GatewayProcess) => Promise<T>): Promise<T> {
  const { g, dispose } = await gateway(dir, config, profileDir);
  try {
    return await fn(g);
  } finally {
    await dispose();
  }
}

/**
 * The destination of one gateway run: a fresh Orthanc (when `toOrthanc`) or else the folder
 * `dir/research`; `dir` is emptied first, removed after `fn`, and the Orthanc stopped.
 */
export async function withDestination<T>(dir: string, toOrthanc: boolean, fn: (dest: Orthanc | null, folder: string) => Promise<T>): Promise<T> {
  const peer = toOrthanc ? await orthanc() : null;
  rmrf(dir);
  try {
    return await fn(peer?.o ?? null, path.join(dir, 'research'));
  } finally {
    rmrf(dir);
    await peer?.dispose();
  }
}

export async function gatewayMetrics(g: GatewayProcess): Promise<Map<string, number>> {
  const r = await fetch(`http://127.0.0.1:${g.apiPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  return parseMetrics(await r.text());
}

export async function orthancCount(o: Orthanc): Promise<number> {
  const r = await fetch(`${o.httpUrl}/statistics`);
  return ((await r.json()) as { CountInstances: number }).CountInstances;
}

/** What arrived at the destination: `n` distinct de-identified instances (new 2.25. SOP UIDs) at
 * Orthanc `dest` (called `name` in errors), or `n` .dcm files in `folder` when `dest` is null. */
export async function checkDelivered(dest: Orthanc | null, name: string, folder: string, n: number): Promise<void> {
  if (dest) {
    const list = await dest.qidoInstances();
    const sops = new Set(list.map((i) => i.sopInstanceUid));
    if (list.length !== n || sops.size !== n) throw new Error(`${name} lists ${list.length} instances (${sops.size} distinct), expected ${n}`);
    const notRemapped = list.filter((i) => !i.sopInstanceUid.startsWith('2.25.')).length;
    if (notRemapped) throw new Error(`${notRemapped} instance(s) at ${name} kept their original SOP Instance UID`);
  } else {
    const written = listFiles(folder).filter((f) => f.endsWith('.dcm')).length;
    if (written !== n) throw new Error(`the folder destination holds ${written} files, expected ${n}`);
  }
}

export const sync = async (): Promise<void> => void (await run('sync', []));
