/**
 * The table and the small statistics every benchmark prints (bench:gateway, bench:export): one
 * row per measure with its reference, ratio, target and status; the rounds' error log, the
 * closing lines and the JSON file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { median, round } from './util';

export type Status = 'PASS' | 'FAIL' | 'info';
export interface Row {
  id: string;
  measure: string;
  value: number | null;
  unit: string;
  reference: string;
  ratio: number | null;
  target: string;
  status: Status;
  headline?: boolean;
  note?: string;
}

export const fmtRatio = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : x >= 10 ? `${x.toFixed(1)}x` : x >= 1 ? `${x.toFixed(2)}x` : `${(100 * x).toFixed(1)}%`;

export function table(rows: Row[]): string {
  const head = ['measure', 'value', 'unit', 'reference', 'ratio', 'target', 'status'];
  const cells = rows.map((r) => [
    `${r.headline ? '* ' : '  '}${r.measure}`,
    r.value === null ? '-' : String(r.value),
    r.unit,
    r.reference,
    fmtRatio(r.ratio),
    r.target,
    r.status === 'FAIL' ? '** FAIL **' : r.status,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const right = new Set([1, 4]);
  const fmt = (c: string[]): string => c.map((x, i) => (right.has(i) ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(fmt)].join('\n');
}

/** Median of the defined numbers, or null. */
export const med = (xs: Array<number | null | undefined>): number | null => {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? median(v) : null;
};
export const max = (xs: Array<number | null | undefined>): number | null => {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? Math.max(...v) : null;
};
/** Per variant id: the median of `pick` over that variant's samples (null when it has none). */
export const medianBy = <S>(byVariant: Record<string, S[]>, pick: (s: S) => number | null) =>
  (id: string): number | null => med((byVariant[id] ?? []).map(pick));
/** Per variant id: the highest gateway peak RSS of its samples, in MB (null when it has none). */
export const peakMBBy = (byVariant: Record<string, Array<{ gatewayPeakKiB: number | null }>>) =>
  (id: string): number | null => kibToMB(max((byVariant[id] ?? []).map((s) => s.gatewayPeakKiB)));
export const r2 = (x: number | null): number | null => (x === null ? null : round(x, 2));
export const r3 = (x: number | null): number | null => (x === null ? null : round(x, 3));
/** Rounded to `d` digits for the table (null stays null). */
export const pm = (x: number | null, d = 1): number | null => (x === null ? null : round(x, d));
/** a / b, or null when either is missing or b is 0. */
export const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);
/** Seconds (of `n` instances) to ms per instance (null stays null). */
export const msPerInstance = (x: number | null, n: number): number | null => (x === null ? null : (x * 1000) / n);
/** KiB (as /proc reports them) to MB (10^6 bytes). */
export const kibToMB = (k: number | null): number | null => (k === null ? null : (k * 1024) / 1e6);

/** A row for information only (no target). */
export const infoRow = (id: string, measure: string, value: number | null, unit: string, reference = '-', r: number | null = null): Row =>
  ({ id, measure, value, unit, reference, ratio: r, target: '-', status: 'info' });

/** A headline row held to `r` >= `min` (a share of its reference): PASS or FAIL (FAIL when not measured). */
export const atLeastRow = (id: string, measure: string, value: number | null, unit: string, reference: string, r: number | null, min: number, note?: string): Row => ({
  id, measure, value: pm(value), unit, reference, ratio: r3(r),
  target: `>= ${min * 100}%`, status: r === null ? 'FAIL' : r >= min ? 'PASS' : 'FAIL', headline: true, note,
});

/** A row holding the highest peak RSS of the rounds below `limitMB`: PASS or FAIL (FAIL when not measured). */
export const peakRssRow = (id: string, measure: string, peakMB: number | null, limitMB: number, headline?: boolean): Row => ({
  id, measure, value: pm(peakMB, 0), unit: 'MB', reference: `${limitMB} MB`, ratio: r3(ratio(peakMB, limitMB)),
  target: `< ${limitMB} MB`, status: peakMB === null ? 'FAIL' : peakMB < limitMB ? 'PASS' : 'FAIL', ...(headline ? { headline } : {}), note: 'highest of the rounds; 1 MB = 10^6 bytes',
});

/**
 * Same-round pairs (reference round k seconds / measured round k seconds), as a row's note: the
 * view least affected by load drift.
 */
export function sameRoundNote(reference: number[], measured: number[]): string {
  const paired = measured.map((s, i) => (reference[i] !== undefined ? reference[i] / s : null)).filter((x): x is number => x !== null);
  return `same-round pairs: ${paired.map((x) => `${(100 * x).toFixed(1)}%`).join(', ') || '-'}`;
}

/** Instances/s and MB/s of `n` instances of `mb` MB in all, and the log text of one run. */
export function throughput(n: number, mb: number): {
  ips: (s: number | null) => number | null; mbps: (s: number | null) => number | null; rate: (s: number) => string;
} {
  return {
    ips: (s) => (s === null ? null : n / s),
    mbps: (s) => (s === null ? null : mb / s),
    rate: (s) => `${s.toFixed(2)} s = ${(n / s).toFixed(1)} inst/s, ${(mb / s).toFixed(1)} MB/s`,
  };
}

/** One way of running the gateway in a benchmark (its samples are kept under `id`). */
export interface Variant { id: string; label: string }

/** An empty sample list per variant, by id. */
export const samplesByVariant = <T>(variants: Variant[]): Record<string, T[]> => Object.fromEntries(variants.map((v) => [v.id, []]));

export interface RunError { round: number; measure: string; error: string }

/**
 * The rounds' runs: `attempt` logs a run, keeps its sample in `into`, or its error in `errors`
 * (a failed run is left out of the medians, never the end of the benchmark).
 */
export function attempts(log: (s: string) => void): {
  errors: RunError[];
  attempt: <T>(roundNo: number, measure: string, fn: () => Promise<T>, into: T[], describe: (s: T) => string) => Promise<void>;
  /** attempt() of every variant in turn, each sample kept under its variant's id. */
  attemptVariants: <V extends Variant, T>(roundNo: number, variants: V[], fn: (v: V) => Promise<T>, into: Record<string, T[]>, describe: (s: T) => string) => Promise<void>;
} {
  const errors: RunError[] = [];
  const attempt = async <T>(roundNo: number, measure: string, fn: () => Promise<T>, into: T[], describe: (s: T) => string): Promise<void> => {
    log(`round ${roundNo}: ${measure} ...`);
    try {
      const s = await fn();
      into.push(s);
      log(`round ${roundNo}: ${measure}: ${describe(s)}`);
    } catch (err) {
      const msg = (err as Error).message;
      errors.push({ round: roundNo, measure, error: msg.slice(0, 4000) });
      log(`round ${roundNo}: ${measure} FAILED: ${msg.slice(0, 2000)}`);
    }
  };
  const attemptVariants = async <V extends Variant, T>(roundNo: number, variants: V[], fn: (v: V) => Promise<T>, into: Record<string, T[]>, describe: (s: T) => string): Promise<void> => {
    for (const v of variants) await attempt(roundNo, v.label, () => fn(v), into[v.id], describe);
  };
  return { errors, attempt, attemptVariants };
}

/** Writes the benchmark's JSON (2-space indent, final newline), making its folder. */
export function writeJson(file: string, out: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
}

/** The table, then each row's note. */
export function printTable(rows: Row[]): void {
  console.log(table(rows));
  for (const r of rows) if (r.note) console.log(`  ${r.id}: ${r.note}`);
}

/** The closing lines: the failed runs, the targets missed (or met), where the JSON went. */
export function printVerdict(rows: Row[], errors: RunError[], repo: string, results: string): void {
  if (errors.length) {
    console.log(`\n${errors.length} run(s) FAILED (left out of the medians):`);
    for (const e of errors) console.log(`  round ${e.round} ${e.measure}: ${e.error.split('\n')[0]}`);
  }
  const failed = rows.filter((r) => r.status === 'FAIL');
  console.log(`\n${failed.length ? `TARGETS MISSED: ${failed.map((r) => r.id).join(', ')}` : 'all targets met'}; JSON: ${path.relative(repo, results)}`);
}
