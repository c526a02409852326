/**
 * STOW-RS receive (PS3.18 10.5, Store Transaction): `POST /studies` and `POST /studies/{uid}`
 * with a `multipart/related; type="application/dicom"` body. Each part is a PS3.10 file that
 * streams straight into a spool writer as its bytes arrive (never the whole request, never a
 * whole part in memory); the response is a DICOM JSON Store Instances Response.
 */
import express, { Request, Response } from 'express';
import { DicomParseError } from '../../dicom/errors';
import type { CommitResult, ReceiveMeta, SpoolWriter } from '../../spool/types';
import { MultipartEvent, MultipartParser, parseMediaType } from './multipart';
import { inspectHead, PartIds } from './part-header';

/** FailureReason (0008,1197) values used (PS3.18 Table I.2-? / PS3.4 C-STORE status codes). */
export const FailureReason = Object.freeze({
  /** Refused: out of resources (the spool is full, or the disk said ENOSPC). */
  OutOfResources: 0xa700,
  /** Error: data set does not match (here: the StudyInstanceUID of /studies/{uid}). */
  DataSetMismatch: 0xa900,
  /** Error: cannot understand (not a readable DICOM file, not application/dicom, cut off). */
  CannotUnderstand: 0xc000,
  /** Processing failure (an unexpected error of ours, e.g. an I/O error other than ENOSPC). */
  ProcessingFailure: 0x0110,
});

/** What the router needs from the spool (the Spool class satisfies it). */
export interface StowSink {
  hasRoom(): boolean;
  openWriter(meta: ReceiveMeta, prefix?: Buffer): SpoolWriter;
}

/** Audit/metrics events; structurally the `instance.*` variants of the DIMSE IngestEvent plus where they came from. */
export type StowEvent =
  | { type: 'instance.received'; spoolId: string; callingAE: string; bytes: number; source: 'dicomweb'; client: string; peer: string }
  | { type: 'instance.quarantined'; spoolId: string; stage: 'ingest'; code: string; reason: string; source: 'dicomweb'; client: string; peer: string };

export interface StowRsDeps {
  sink: StowSink;
  /** Called after each commit; a throwing listener is ignored (the instance is durable either way). */
  onEvent(e: StowEvent): void;
  /** Upper bound of one request body (default 2048): a larger one gets 413. */
  maxRequestMB?: number;
  /** When set, RetrieveURL (0008,1190) = `${retrieveBaseUrl}/studies/{study}[/series/{series}/instances/{sop}]`. */
  retrieveBaseUrl?: string;
  /** Recorded as the calling AE of every instance (routes can match on it; default 'STOW-RS'). */
  callingAE?: string;
  /** A request body idle for this long is dropped (default 120 000 ms). */
  idleTimeoutMs?: number;
  /** Retry-After (seconds) sent with 503 when the spool is full (default 60). */
  retryAfterSeconds?: number;
  /** The first bytes of each part kept in memory to read its UIDs (default 4 MB). */
  headBytes?: number;
  /** Parts of one request beyond this many are refused with 0xA700 and not spooled (default 10 000). */
  maxParts?: number;
}

export const DICOM_JSON = 'application/dicom+json';
const UID = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;
/** Commits (fsync + validation) allowed to run while the next parts stream in. */
const MAX_PENDING_COMMITS = 4;

interface PartOutcome {
  ids: PartIds;
  /** Undefined = stored. */
  failure?: number;
  /** Why it failed (logged nowhere public: DICOM JSON has no place for text). */
  why?: string;
}

/** Every status / reason of one request, for the response. */
interface Transaction {
  outcomes: Promise<PartOutcome>[];
  /** The multipart structure broke: the rest of the body was not read. */
  malformed?: string;
  tooLarge?: boolean;
  /** The connection broke (client gone, or idle too long): there is nobody to answer. */
  aborted?: boolean;
}

/**
 * The STOW-RS router; mount it at `/dicomweb` behind the bearer auth (it refuses with 401 any
 * request that arrives without `res.locals.client` set by that auth: fail closed if mis-mounted).
 */
export function createStowRsRouter(deps: StowRsDeps): express.Router {
  const router = express.Router();
  const handler = (req: Request, res: Response): Promise<void> => handleStore(deps, req, res);
  router.post('/studies', handler);
  router.post('/studies/:study', handler);
  return router;
}

async function handleStore(deps: StowRsDeps, req: Request, res: Response): Promise<void> {
  const client = res.locals.client;
  if (typeof client !== 'string' || !client) {
    return reject(res, 401, 'a valid bearer token is required', { 'WWW-Authenticate': 'Bearer' });
  }
  const study = typeof req.params.study === 'string' ? req.params.study : undefined;
  if (study !== undefined && (study.length > 64 || !UID.test(study))) return reject(res, 400, 'the study in the URL is not a UID');
  if (!acceptsDicomJson(req.get('accept'))) return reject(res, 406, `the response is ${DICOM_JSON}`);

  const ct = parseMediaType(req.get('content-type'));
  if (!ct || ct.type !== 'multipart/related') return reject(res, 415, 'Content-Type must be multipart/related; type="application/dicom"');
  const partType = ct.params.get('type')?.toLowerCase();
  if (partType !== undefined && partType !== 'application/dicom') return reject(res, 415, `multipart/related of type ${JSON.stringify(partType)}: only application/dicom is accepted`);
  const boundary = ct.params.get('boundary');
  if (!boundary) return reject(res, 400, 'multipart/related without a boundary');
  let parser: MultipartParser;
  try {
    parser = new MultipartParser(boundary);
  } catch (err) {
    return reject(res, 400, (err as Error).message);
  }

  const limit = (deps.maxRequestMB ?? 2048) * 1024 * 1024;
  const declared = req.get('content-length');
  if (declared !== undefined && Number(declared) > limit) return reject(res, 413, `request larger than ${deps.maxRequestMB ?? 2048} MB`);
  if (!safeHasRoom(deps.sink)) {
    return reject(res, 503, 'spool full, retry later', { 'Retry-After': String(deps.retryAfterSeconds ?? 60) });
  }

  const tx = await receive(deps, req, parser, limit, study, client);
  const outcomes = await Promise.all(tx.outcomes);
  if (tx.aborted) return;
  if (tx.malformed) outcomes.push({ ids: {}, failure: FailureReason.CannotUnderstand, why: tx.malformed });
  const stored = outcomes.filter((o) => o.failure === undefined).length;
  const failed = outcomes.length - stored;
  const body = responseBody(outcomes, deps.retrieveBaseUrl, study);
  // Whatever of the body we did not read is not drained: close the connection after answering.
  if (!req.complete) res.set('Connection', 'close');
  let status: number;
  if (tx.tooLarge) status = 413;
  else if (tx.malformed && stored === 0) status = 400;
  else if (outcomes.length === 0) return reject(res, 400, 'multipart body without any part');
  else status = failed === 0 ? 200 : stored === 0 ? 409 : 202;
  res.status(status).type(DICOM_JSON).send(JSON.stringify(body));
}

/** Reads the body, part by part into the spool; a dropped connection just ends it (only a bug throws). */
async function receive(deps: StowRsDeps, req: Request, parser: MultipartParser, limit: number, study: string | undefined, client: string): Promise<Transaction> {
  const tx: Transaction = { outcomes: [] };
  const headMax = deps.headBytes ?? 4 << 20;
  const peer = normalisePeer(req.socket.remoteAddress ?? '');
  const meta = (): ReceiveMeta => ({ source: 'dicomweb', callingAE: deps.callingAE ?? 'STOW-RS', peer, receivedAt: new Date().toISOString() });
  const emit = (e: StowEvent): void => {
    try {
      deps.onEvent(e);
    } catch {
      /* the instance is durable; a listener's bug must not change the answer */
    }
  };

  let part: OpenPart | null = null;
  let pending: Promise<PartOutcome>[] = [];
  let received = 0;
  const idleMs = deps.idleTimeoutMs ?? 120_000;
  const idle = setTimeout(() => req.destroy(new Error('request body idle')), idleMs);

  const closePart = (p: OpenPart): Promise<PartOutcome> => {
    const outcome = finishPart(p, study, headMax).then(async (o) => {
      if (o.commit?.status === 'stored') {
        emit({ type: 'instance.received', spoolId: o.commit.entry.id, callingAE: deps.callingAE ?? 'STOW-RS', bytes: p.bytes, source: 'dicomweb', client, peer });
      } else if (o.commit?.status === 'quarantined') {
        emit({ type: 'instance.quarantined', spoolId: o.commit.entry.id, stage: 'ingest', code: o.commit.code, reason: o.commit.reason, source: 'dicomweb', client, peer });
      }
      return o.outcome;
    });
    tx.outcomes.push(outcome);
    return outcome;
  };

  const maxParts = deps.maxParts ?? 10_000;
  let partCount = 0;
  const onEvent = async (ev: MultipartEvent): Promise<void> => {
    if (ev.kind === 'part') {
      part = openPart(deps.sink, ev.headers, meta, ++partCount > maxParts ? `more than ${maxParts} parts in one request` : undefined);
    } else if (ev.kind === 'data') {
      part!.write(ev.data, headMax);
    } else {
      const p = part!;
      part = null;
      pending.push(closePart(p));
      if (pending.length >= MAX_PENDING_COMMITS) {
        await pending[0];
        pending = pending.slice(1);
      }
    }
  };

  try {
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      idle.refresh();
      received += chunk.length;
      if (received > limit) {
        tx.tooLarge = true;
        break;
      }
      if (parser.done) continue; // epilogue
      // Parts completed before a structural fault are handled as usual; the open one fails below.
      for (const ev of parser.push(chunk)) await onEvent(ev);
      idle.refresh();
      if (parser.error) {
        tx.malformed = parser.error.message;
        break;
      }
    }
    if (!tx.tooLarge && !tx.malformed && !parser.done) {
      if (!parser.started) tx.malformed = 'no multipart delimiter in the body (wrong boundary?)';
      else if (!parser.inBody) tx.malformed = 'multipart body ends without its close delimiter';
    }
  } catch (err) {
    // The client went away (or stayed idle): what was committed stays committed, nobody hears back.
    if (!req.destroyed) {
      clearTimeout(idle);
      await (part as OpenPart | null)?.abort();
      throw err;
    }
    tx.aborted = true;
  } finally {
    clearTimeout(idle);
  }
  if (part) {
    // Cut off: a request too large, a broken structure, a body ending inside a part.
    const p: OpenPart = part;
    await p.abort();
    if (!tx.malformed) tx.outcomes.push(Promise.resolve({ ids: p.ids(), failure: FailureReason.CannotUnderstand, why: 'the part is cut off' }));
  }
  return tx;
}

interface OpenPart {
  write(data: Buffer, headMax: number): void;
  readonly bytes: number;
  /** The part fails whatever its content (set when it was opened). */
  readonly refused?: { failure: number; why: string };
  readonly writer: SpoolWriter | null;
  head(): { head: Buffer; complete: boolean };
  ids(): PartIds;
  abort(): Promise<void>;
}

function openPart(sink: StowSink, headers: Map<string, string>, meta: () => ReceiveMeta, tooMany?: string): OpenPart {
  let refused: { failure: number; why: string } | undefined;
  let writer: SpoolWriter | null = null;
  // A part without Content-Type has the type of the request (RFC 2387 "type"): application/dicom.
  const type = headers.has('content-type') ? parseMediaType(headers.get('content-type'))?.type : 'application/dicom';
  if (tooMany) {
    refused = { failure: FailureReason.OutOfResources, why: tooMany };
  } else if (type !== 'application/dicom') {
    refused = { failure: FailureReason.CannotUnderstand, why: `part of type ${JSON.stringify(headers.get('content-type') ?? '')}` };
  } else if (!safeHasRoom(sink)) {
    refused = { failure: FailureReason.OutOfResources, why: 'spool full' };
  } else {
    try {
      writer = sink.openWriter(meta());
    } catch (err) {
      refused = { failure: failureForError(err), why: `cannot open a spool writer: ${(err as Error).message}` };
    }
  }
  const chunks: Buffer[] = [];
  let kept = 0;
  let bytes = 0;
  let headCache: Buffer | null = null;
  return {
    refused,
    writer,
    get bytes() {
      return bytes;
    },
    write(data, headMax) {
      bytes += data.length;
      if (kept < headMax) {
        const take = data.subarray(0, headMax - kept);
        chunks.push(Buffer.from(take)); // a copy: `data` is a view of the parser's buffer
        kept += take.length;
      }
      writer?.write(data);
    },
    head() {
      if (!headCache) {
        headCache = Buffer.concat(chunks, kept);
        chunks.length = 0;
      }
      return { head: headCache, complete: kept === bytes };
    },
    ids() {
      const { head, complete } = this.head();
      return inspectHead(head, complete).ids;
    },
    async abort() {
      await writer?.abort().catch(() => undefined);
    },
  };
}

/** Checks the part, commits it (or drops it), and says what to answer for it. */
async function finishPart(p: OpenPart, study: string | undefined, headMax: number): Promise<{ outcome: PartOutcome; commit?: CommitResult }> {
  const { head, complete } = p.head();
  const info = inspectHead(head, complete);
  const ids = info.ids;
  if (p.refused || !p.writer) {
    await p.abort();
    return { outcome: { ids, failure: p.refused?.failure ?? FailureReason.ProcessingFailure, why: p.refused?.why } };
  }
  if (p.bytes === 0) {
    await p.abort();
    return { outcome: { ids, failure: FailureReason.CannotUnderstand, why: 'empty part' } };
  }
  if (study !== undefined) {
    // PS3.18: an instance of another study than the one in the URL is not stored. Checked before
    // the commit, from the head, so a refused instance never enters the spool.
    let mismatch: string | undefined;
    if (info.status === 'ok' && info.ids.studyUid !== study) mismatch = `StudyInstanceUID ${info.ids.studyUid ?? '(none)'} is not ${study}`;
    if (info.status === 'incomplete') {
      await p.abort();
      return { outcome: { ids, failure: FailureReason.ProcessingFailure, why: `StudyInstanceUID not within the first ${headMax} bytes` } };
    }
    if (mismatch) {
      await p.abort();
      return { outcome: { ids, failure: FailureReason.DataSetMismatch, why: mismatch } };
    }
  }
  let commit: CommitResult;
  try {
    commit = await p.writer.commit();
  } catch (err) {
    return { outcome: { ids, failure: failureForError(err), why: (err as Error).message } };
  }
  if (commit.status === 'quarantined') return { outcome: { ids, failure: FailureReason.CannotUnderstand, why: `${commit.code}: ${commit.reason}` }, commit };
  return { outcome: { ids }, commit };
}

function failureForError(err: unknown): number {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EMFILE' || code === 'ENFILE') return FailureReason.OutOfResources;
  if (err instanceof DicomParseError) return FailureReason.CannotUnderstand;
  return FailureReason.ProcessingFailure;
}

function safeHasRoom(sink: StowSink): boolean {
  try {
    return sink.hasRoom();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- response

type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

/** The Store Instances Response (PS3.18 10.5.3.1) in DICOM JSON (PS3.18 F.2). */
export function responseBody(outcomes: PartOutcome[], retrieveBaseUrl: string | undefined, study: string | undefined): DicomJson {
  const base = retrieveBaseUrl?.replace(/\/+$/, '');
  const referenced: DicomJson[] = [];
  const failed: DicomJson[] = [];
  for (const o of outcomes) {
    const item: DicomJson = {};
    if (o.ids.sopClassUid) item['00081150'] = { vr: 'UI', Value: [o.ids.sopClassUid] };
    if (o.ids.sopInstanceUid) item['00081155'] = { vr: 'UI', Value: [o.ids.sopInstanceUid] };
    if (o.failure === undefined) {
      const { studyUid, seriesUid, sopInstanceUid } = o.ids;
      if (base && studyUid && seriesUid && sopInstanceUid) {
        item['00081190'] = { vr: 'UR', Value: [`${base}/studies/${studyUid}/series/${seriesUid}/instances/${sopInstanceUid}`] };
      }
      referenced.push(item);
    } else {
      item['00081197'] = { vr: 'US', Value: [o.failure] };
      failed.push(item);
    }
  }
  const body: DicomJson = {};
  if (base && study && referenced.length) body['00081190'] = { vr: 'UR', Value: [`${base}/studies/${study}`] };
  if (failed.length) body['00081198'] = { vr: 'SQ', Value: failed };
  if (referenced.length) body['00081199'] = { vr: 'SQ', Value: referenced };
  return body;
}

// ---------------------------------------------------------------- helpers

/** Answers an error without reading the body; the connection is closed unless the body was empty. */
function reject(res: Response, status: number, message: string, headers: Record<string, string> = {}): void {
  const req = res.req;
  const hasBody = req.get('content-length') !== undefined ? Number(req.get('content-length')) > 0 : req.get('transfer-encoding') !== undefined;
  if (hasBody && !req.complete) res.set('Connection', 'close');
  res.status(status).set(headers).json({ error: message });
}

/** Accept absent, or naming DICOM JSON, JSON, or a wildcard that covers it. */
function acceptsDicomJson(accept: string | undefined): boolean {
  if (!accept || !accept.trim()) return true;
  return accept.split(',').some((range) => {
    const m = parseMediaType(range.trim());
    if (!m) return false;
    const q = m.params.get('q');
    if (q !== undefined && Number(q) === 0) return false;
    return ['*/*', 'application/*', 'application/dicom+json', 'application/json'].includes(m.type);
  });
}

function normalisePeer(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}
