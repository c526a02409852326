import type { RouteConfig } from '../config/schema';
import type { ExportQuery } from './types';

export type JobState = 'queued' | 'running' | 'finishing' | 'completed' | 'completed_with_errors' | 'failed' | 'cancelled';

export const TERMINAL_STATES: readonly JobState[] = ['completed', 'completed_with_errors', 'failed', 'cancelled'];

/** What was asked, fixed at creation (job.json). Holds the query as given: PHI, kept 0600 beside the spool. */
export interface JobRecord {
  id: string;
  createdAt: string;
  /** The API client (`token#N`) or `cli`. */
  requestedBy: string;
  source: string;
  query: ExportQuery;
  /** The route every retrieved instance takes (a configured one, or one built from profile + destinations). */
  route: RouteConfig;
}

/** New identifiers and hashes of one forwarded output (the manifest's rows). */
export interface OutputRow {
  newStudyUid: string;
  newSeriesUid: string;
  newSopInstanceUid: string;
  sopClassUid: string;
  pixelSha256: string | null;
}

/**
 * One line of a job's append-only event log (events.jsonl). Studies, series and instances are
 * named by keyed hashes of their original UIDs (Pseudonymizer.keyedHash), never by the UIDs.
 */
export type JobEvent =
  | { e: 'state'; state: JobState; error?: string; by?: string }
  | { e: 'found'; studies: { study: string; newStudyUid: string; instances?: number }[] }
  | { e: 'series'; study: string; series: string; instances: number }
  | { e: 'spooled'; spoolId: string; study: string; series: string; sop: string; bytes: number }
  | { e: 'series-done'; study: string; series: string; missing: number; code?: string; error?: string }
  | { e: 'study-error'; study: string; code: string; error: string }
  | { e: 'settled'; spoolId: string; outcome: 'forwarded' | 'quarantined' | 'dropped' | 'skipped'; code?: string; outputs?: OutputRow[] }
  | { e: 'retry'; attempt: number; delayMs: number; code: string };
