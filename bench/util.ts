/** Small helpers shared by the benchmark scripts (timing, child processes, file walking). */
import { spawn, SpawnOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export const now = (): number => Number(process.hrtime.bigint()) / 1e9;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, timing it by wall clock (process start to exit). */
export function run(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = now();
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, seconds: now() - started, stdout, stderr }));
  });
}

/** Like run() but throws with the child's stderr on a non-zero exit. */
export async function runOk(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code ?? r.signal}:\n${r.stderr.slice(-4000)}${r.stdout.slice(-2000)}`);
  }
  return r;
}

/** Every regular file below `root`, relative, sorted (deterministic order). */
export function listFiles(root: string): string[] {
  const out: string[] = [];
  const visit = (rel: string): void => {
    const entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const r = rel ? path.join(rel, e.name) : e.name;
      if (e.isDirectory()) visit(r);
      else if (e.isFile()) out.push(r);
    }
  };
  visit('');
  return out;
}

export function totalBytes(root: string, files: string[]): number {
  return files.reduce((n, f) => n + fs.statSync(path.join(root, f)).size, 0);
}

export function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

/** Free bytes on the filesystem holding `dir`. */
export function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

export const mb = (bytes: number): number => bytes / 1e6;
export const round = (n: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

/** The benchmarks' work folder (corpus cache, peers' folders): $BENCH_DIR, default $TMPDIR/deid-bench. */
export const benchWorkDir = (): string => path.resolve(process.env.BENCH_DIR ?? path.join(os.tmpdir(), 'deid-bench'));

/**
 * The settings bench:gateway and bench:export both read, from BENCH_<NAME>_RUNS (rounds, default
 * 3), _DIAG=0 (skip the diagnosis variants), _PROFILE=1|0 (always / never profile; unset: when
 * the target fails), _RESULTS (default bench/results/<name>-latest.json); and the work folder.
 */
export function benchSettings(repo: string, name: string): { runs: number; diag: boolean; profile: string | undefined; work: string; results: string } {
  const env = (k: string): string | undefined => process.env[`BENCH_${name.toUpperCase()}_${k}`];
  return {
    runs: Math.max(1, Number(env('RUNS') ?? 3)),
    diag: env('DIAG') !== '0',
    profile: env('PROFILE'),
    work: benchWorkDir(),
    results: path.resolve(env('RESULTS') ?? path.join(repo, `bench/results/${name}-latest.json`)),
  };
}
