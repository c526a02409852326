/** /proc readers, metrics parsing and small process helpers for bench/gateway.ts and bench/export.ts (Linux only). */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { kibToMB, max, med, r2 } from './report';

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

/** b - a of two cpuSeconds() readings; null when either is missing. */
export const cpuDelta = (a: number | null, b: number | null): number | null => (a !== null && b !== null ? b - a : null);

/** The gateway's per-instance de-identify / forward timings and its retry and quarantine counters. */
export interface ForwardStats {
  deidSecondsAvg: number | null;
  forwardSecondsAvg: number | null;
  forwardObservations: number;
  retries: number;
  quarantined: number;
}

export function forwardStats(m: Map<string, number>): ForwardStats {
  const deidCount = metricSum(m, 'deid_deidentify_seconds_count');
  const fwdCount = metricSum(m, 'deid_forward_seconds_count');
  return {
    deidSecondsAvg: deidCount ? metricSum(m, 'deid_deidentify_seconds_sum') / deidCount : null,
    forwardSecondsAvg: fwdCount ? metricSum(m, 'deid_forward_seconds_sum') / fwdCount : null,
    forwardObservations: fwdCount,
    retries: metricSum(m, 'deid_forward_retries_total'),
    quarantined: metricSum(m, 'deid_instances_quarantined_total'),
  };
}

/** The deid_*, process_* and nodejs_heap_size* series worth keeping in the JSON (no histogram buckets). */
export function keptMetrics(m: Map<string, number>): Record<string, number> {
  const keep: Record<string, number> = {};
  for (const [k, val] of m) if ((k.startsWith('deid_') && !k.includes('_bucket{')) || k.startsWith('process_') || k.startsWith('nodejs_heap_size')) keep[k] = val;
  return keep;
}

/** Diagnosis, medians over rounds: de-identify (worker) and forward ms per instance. */
export const forwardMsDiag = (samples: ForwardStats[]): { deidentifyMsAvg: number | null; forwardMsAvg: number | null } => ({
  deidentifyMsAvg: r2(med(samples.map((s) => (s.deidSecondsAvg === null ? null : s.deidSecondsAvg * 1000)))),
  forwardMsAvg: r2(med(samples.map((s) => (s.forwardSecondsAvg === null ? null : s.forwardSecondsAvg * 1000)))),
});

/** Diagnosis: the gateway's RSS after start (median) and its peak (highest of the rounds), MB. */
export const gatewayRssDiag = (samples: Array<{ gatewayStartKiB: number | null; gatewayPeakKiB: number | null }>): { gatewayStartRssMB: number | null; gatewayPeakMB: number | null } => ({
  gatewayStartRssMB: r2(med(samples.map((s) => kibToMB(s.gatewayStartKiB)))),
  gatewayPeakMB: r2(max(samples.map((s) => kibToMB(s.gatewayPeakKiB)))),
});

/** Diagnosis: the most forward retries and quarantined instances of any round. */
export const troubleDiag = (samples: ForwardStats[]): { retries: number | null; quarantined: number | null } => ({
  retries: max(samples.map((s) => s.retries)),
  quarantined: max(samples.map((s) => s.quarantined)),
});
