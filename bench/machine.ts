/** What a benchmark's JSON says about the machine and the code under test (bench:gateway, bench:export). */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import { cpuPressure } from './gateway-proc';
import { round } from './util';

/** os.loadavg() and /proc/pressure/cpu taken when a benchmark starts. */
export interface LoadBefore { loadavg: number[]; cpuPressure: string | null }

export function loadBefore(): LoadBefore {
  return { loadavg: os.loadavg(), cpuPressure: cpuPressure() };
}

/** The `machine` object of the JSON: cores, memory, load and CPU pressure before and after. */
export function machineInfo(cores: number, before: LoadBefore, loadAfter: number[]) {
  return {
    cores,
    memMB: Math.round(os.totalmem() / 1e6),
    loadavgBefore: before.loadavg.map((x) => round(x, 2)),
    loadavgAfter: loadAfter.map((x) => round(x, 2)),
    cpuPressureBefore: before.cpuPressure,
    cpuPressureAfter: cpuPressure(),
  };
}

/** The header line's load part: `load 0.10 0.20 0.30 -> 0.40 0.50 0.60`. */
export const loadLine = (before: LoadBefore, loadAfter: number[]): string =>
  `load ${before.loadavg.map((x) => x.toFixed(2)).join(' ')} -> ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`;

/** HEAD of the repository, or null. */
export const gitHead = (repo: string): string | null =>
  spawnSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).stdout.trim() || null;

/** `git status --porcelain src` lines: uncommitted src/ changes the build under test includes. */
export const gitDirtySrc = (repo: string): string[] =>
  spawnSync('git', ['status', '--porcelain', 'src'], { cwd: repo, encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);

/** The opening fields of a benchmark's JSON: its name, when it started and finished (now). */
export const runTimes = (benchmark: string, started: Date): { benchmark: string; started: string; finished: string } =>
  ({ benchmark, started: started.toISOString(), finished: new Date().toISOString() });
