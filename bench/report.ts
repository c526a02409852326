/**
 * The table and the small statistics every benchmark prints (bench:gateway, bench:export): one
 * row per measure with its reference, ratio, target and status.
 */
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
export const r2 = (x: number | null): number | null => (x === null ? null : round(x, 2));
