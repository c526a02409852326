import type * as http from 'node:http';
import { isValidBoundary, MultipartParser, parseMediaType } from '../../ingest/dicomweb/multipart';
import { InstanceWriter, RetrieveProgress, RetrieveResult, RetrieveSink, SourceError } from '../types';

/**
 * WADO-RS multipart answers streamed into a RetrieveSink: one writer per part, data written as
 * it comes, committed at the part's end. Memory stays at a socket chunk or so whatever the
 * series size.
 */

/** Commits (fsync) overlap the download of the next parts, up to this many at once. */
const MAX_PENDING_COMMITS = 4;

/**
 * A retrieve that failed part way (connection cut, timeout, 5xx between instances). Instances
 * committed before the failure stay committed; `partial` counts them, so the caller can resume
 * with retrieveInstances() after re-listing the series (findInstances) against what it holds.
 */
export class RetrieveError extends SourceError {
  constructor(cause: SourceError, readonly partial: RetrieveResult) {
    super(cause.message, cause.transient, cause.status);
    this.name = 'RetrieveError';
  }
}

/** Counts a retrieve's outcome and reports progress after each part. */
export class Tally {
  private stored = 0;
  private failures = 0;

  constructor(private readonly onProgress?: (p: RetrieveProgress) => void, private readonly expected?: number) {}

  committed(): void {
    this.stored++;
    this.report();
  }

  failed(): void {
    this.failures++;
    this.report();
  }

  result(): RetrieveResult {
    return { received: this.stored, failed: this.failures };
  }

  private report(): void {
    const completed = this.stored + this.failures;
    const remaining = this.expected === undefined ? undefined : Math.max(0, this.expected - completed);
    try {
      this.onProgress?.({ completed, remaining, failed: this.failures });
    } catch {
      /* a progress listener's bug must not fail the retrieve */
    }
  }
}

/** Runs a retrieve; a SourceError leaves as a RetrieveError carrying what was committed. */
export async function withPartial(tally: Tally, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof SourceError && !(err instanceof RetrieveError)) throw new RetrieveError(err, tally.result());
    throw err;
  }
}

/**
 * Commits in flight: each one counts in the tally when it resolves. Bounded, so a slow spool
 * (fsync) holds the download back (we stop reading the socket) instead of piling up writers.
 */
class CommitQueue {
  private pending: Promise<void>[] = [];

  constructor(private readonly tally: Tally) {}

  async add(commit: Promise<unknown>): Promise<void> {
    const p = commit.then(() => this.tally.committed());
    // Handled here so that a failure waiting in the queue is not an unhandled rejection;
    // awaiting `p` later still throws it.
    p.catch(() => undefined);
    this.pending.push(p);
    if (this.pending.length >= MAX_PENDING_COMMITS) await this.pending.shift();
  }

  /** Waits for every commit; throws the first failure. */
  async settle(): Promise<void> {
    const results = await Promise.allSettled(this.pending.splice(0));
    const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad) throw bad.reason;
  }
}

function isDicomPart(headers: Map<string, string>): boolean {
  // A part without Content-Type has the type of the whole (RFC 2387 `type`): application/dicom.
  const ct = headers.get('content-type');
  return ct === undefined || parseMediaType(ct)?.type === 'application/dicom';
}

function multipartParser(res: http.IncomingMessage, what: string): MultipartParser {
  const ct = parseMediaType(res.headers['content-type']);
  if (ct?.type !== 'multipart/related') throw new SourceError(`${what}: the answer is ${ct?.type ?? 'untyped'}, not multipart/related`, false, res.statusCode);
  const boundary = ct.params.get('boundary');
  if (!boundary || !isValidBoundary(boundary)) throw new SourceError(`${what}: multipart answer without a valid boundary`, false, res.statusCode);
  return new MultipartParser(boundary);
}

/**
 * Streams a WADO-RS multipart answer into the sink, one writer per part. A part that is not
 * application/dicom counts as failed. `data` views go straight to the writer:
 * InstanceWriter.write consumes them synchronously. On any failure the open writer is aborted
 * (no half instance reaches the spool) after the commits in flight settle, and the failure is
 * thrown: an answer cut short is transient, a malformed one permanent.
 */
export async function receiveParts(res: http.IncomingMessage, sink: RetrieveSink, tally: Tally, what: string): Promise<void> {
  if (res.statusCode === 204) return;
  const parser = multipartParser(res, what);
  const commits = new CommitQueue(tally);
  let writer: InstanceWriter | null = null;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (parser.done) continue; // the epilogue
      for (const ev of parser.push(chunk)) {
        if (ev.kind === 'part') {
          writer = isDicomPart(ev.headers) ? sink.open() : null;
        } else if (ev.kind === 'data') {
          writer?.write(ev.data);
        } else if (writer) {
          const w: InstanceWriter = writer;
          writer = null;
          await commits.add(w.commit());
        } else {
          tally.failed();
        }
      }
      // The parser's message may quote part headers (Content-Location holds UIDs): not passed on.
      if (parser.error) throw new SourceError(`${what}: malformed multipart answer`, false, res.statusCode);
    }
    if (!parser.done) throw new SourceError(`${what}: the answer ends ${parser.inBody ? 'inside a part' : 'without its close delimiter'}`, true, res.statusCode);
  } catch (err) {
    await (writer as InstanceWriter | null)?.abort().catch(() => undefined);
    await commits.settle().catch(() => undefined);
    throw err;
  }
  await commits.settle();
}
