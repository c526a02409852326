/** /proc readers and small process helpers for bench/gateway.ts (Linux only). */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat CPU fields. */
export const CLK_TCK = ((): number => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** VmHWM (peak RSS) and VmRSS of a live process, in KiB; null when it is gone. */
export function memoryKiB(pid: number): { hwm: number; rss: number } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { hwm: get('VmHWM'), rss: get('VmRSS') };
  } catch {
    return null;
  }
}

/** user + system CPU seconds of a live process (all its threads); null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return null;
  }
}

/** Machine-wide CPU counters from /proc/stat (jiffies): busy and total. */
export function machineCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Cores busy on average between two machineCpu() readings. */
export function coresBusy(a: { busy: number; total: number }, b: { busy: number; total: number }, cores: number): number {
  const dt = b.total - a.total;
  return dt > 0 ? ((b.busy - a.busy) / dt) * cores : 0;
}

/** /proc/pressure/cpu "some" line (share of time something waited for a CPU), if available. */
export function cpuPressure(): string | null {
  try {
    return fs.readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0];
  } catch {
    return null;
  }
}

/** The first line of `cmd args` output (stdout or stderr), or null. */
export function versionLine(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').map((l) => l.trim()).filter(Boolean);
  return out[0] ?? null;
}

/** Parses Prometheus text exposition into `name{labels}` -> value (labels as printed). */
export function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** Sum of every series of a metric name (any labels). */
export function metricSum(m: Map<string, number>, name: string): number {
  let s = 0;
  for (const [k, v] of m) if (k === name || k.startsWith(`${name}{`)) s += v;
  return s;
}
