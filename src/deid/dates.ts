/**
 * Date shifting for the Retain Longitudinal Temporal Information with Modified Dates option:
 * every date moves by the same whole number of days per patient, so intervals (and ages
 * computed from them) survive. A value that is not a date cannot be shifted and is emptied:
 * keeping it would keep whatever it holds.
 */

const DAY_MS = 86_400_000;

function shiftYmd(year: number, month: number, day: number, days: number): [number, number, number] | null {
  const t = Date.UTC(year, month - 1, day);
  const check = new Date(t);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) return null;
  const d = new Date(t + days * DAY_MS);
  const y = d.getUTCFullYear();
  if (y < 1 || y > 9999) return null;
  return [y, d.getUTCMonth() + 1, d.getUTCDate()];
}

const p2 = (n: number): string => String(n).padStart(2, '0');
const p4 = (n: number): string => String(n).padStart(4, '0');

/** DA: YYYYMMDD (also the legacy YYYY.MM.DD); ranges "A-B" shift both ends. */
export function shiftDA(value: string, days: number): string {
  return value
    .split('\\')
    .map((v) => {
      const parts = v.split('-').map((part) => shiftOneDate(part.trim(), days));
      return parts.includes(null) ? '' : parts.join('-');
    })
    .join('\\');
}

function shiftOneDate(v: string, days: number): string | null {
  if (v === '') return '';
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec(v);
  const r = m && shiftYmd(+m[1], +m[2], +m[3], days);
  return r ? `${p4(r[0])}${p2(r[1])}${p2(r[2])}` : null;
}

/** DT: YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX]; the date part moves, the precision stays. */
export function shiftDT(value: string, days: number): string {
  return value
    .split('\\')
    .map((v) => shiftOneDateTime(v.trim(), days))
    .join('\\');
}

function shiftOneDateTime(v: string, days: number): string {
  if (v === '') return '';
  const m = /^(\d{4})(\d{2})?(\d{2})?(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?([+-]\d{4})?$/.exec(v);
  if (!m) return '';
  const r = shiftYmd(+m[1], m[2] ? +m[2] : 1, m[3] ? +m[3] : 1, days);
  if (!r) return '';
  // Keep the original precision: a year-only value stays a year.
  const date = `${p4(r[0])}${m[2] ? p2(r[1]) : ''}${m[3] ? p2(r[2]) : ''}`;
  return date + (m[4] ?? '') + (m[5] ?? '');
}
