import { FileOutcome, FileResult } from './process-file';

export interface Summary {
  files: number;
  outcomes: Record<FileOutcome, number>;
  /** "quarantined: LEAK_DETECTED" -> count. */
  reasons: Record<string, number>;
  bytesIn: number;
  bytesOut: number;
  seconds: number;
  instancesPerSecond: number;
  megabytesPerSecond: number;
  /** Per-file problems (relative input paths are shown only to the operator, in the summary file). */
  problems: { input: string; outcome: FileOutcome; code?: string; reason?: string }[];
}

export class SummaryBuilder {
  private readonly started = process.hrtime.bigint();
  readonly s: Summary = {
    files: 0,
    outcomes: { written: 0, skipped: 0, quarantined: 0, ignored: 0 },
    reasons: {},
    bytesIn: 0,
    bytesOut: 0,
    seconds: 0,
    instancesPerSecond: 0,
    megabytesPerSecond: 0,
    problems: [],
  };

  add(r: FileResult): void {
    this.s.files++;
    this.s.outcomes[r.outcome]++;
    this.s.bytesIn += r.bytesIn;
    this.s.bytesOut += r.bytesOut;
    if (r.outcome !== 'written') {
      const key = `${r.outcome}: ${r.code ?? 'unknown'}`;
      this.s.reasons[key] = (this.s.reasons[key] ?? 0) + 1;
      this.s.problems.push({ input: r.rel, outcome: r.outcome, code: r.code, reason: r.reason });
    }
  }

  finish(): Summary {
    this.s.seconds = Number(process.hrtime.bigint() - this.started) / 1e9;
    const processed = this.s.files - this.s.outcomes.ignored;
    this.s.instancesPerSecond = round(processed / Math.max(this.s.seconds, 1e-9));
    this.s.megabytesPerSecond = round(this.s.bytesIn / 1e6 / Math.max(this.s.seconds, 1e-9));
    this.s.seconds = round(this.s.seconds);
    return this.s;
  }
}

const round = (n: number): number => Math.round(n * 100) / 100;

/** The human summary: counts and rates only, no paths or identifiers. */
export function formatSummary(s: Summary): string {
  const lines = [
    `files: ${s.files}  written: ${s.outcomes.written}  quarantined: ${s.outcomes.quarantined}  skipped: ${s.outcomes.skipped}  ignored (not DICOM): ${s.outcomes.ignored}`,
    ...Object.entries(s.reasons).sort().map(([k, n]) => `  ${k}: ${n}`),
    `read ${(s.bytesIn / 1e6).toFixed(1)} MB, wrote ${(s.bytesOut / 1e6).toFixed(1)} MB in ${s.seconds.toFixed(2)} s: ${s.instancesPerSecond} instances/s, ${s.megabytesPerSecond} MB/s`,
  ];
  return lines.join('\n');
}
