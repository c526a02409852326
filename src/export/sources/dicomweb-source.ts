import * as http from 'node:http';
import * as https from 'node:https';
import type { SourceConfig } from '../../config/schema';
import { authHeaders } from '../../forward/auth-header';
import type { SecretSource } from '../../forward/destination';
import { isValidBoundary, MultipartParser, parseMediaType } from '../../ingest/dicomweb/multipart';
import { SourceLimiter } from '../limiter';
import {
  ExportQuery, ExportSource, InstanceRef, InstanceWriter, RetrieveOptions, RetrieveProgress, RetrieveResult, RetrieveSink,
  SeriesRef, SourceError, StudyRef,
} from '../types';
import { count, DicomJsonObject, parseDatasets, TAG, text, texts } from './dicomweb-json';

export type DicomwebSourceConfig = Extract<SourceConfig, { type: 'dicomweb' }>;

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

const DICOM_JSON = 'application/dicom+json';
/** The instances as stored (no transcoding): the de-identification works on the original bytes. */
const ACCEPT_ORIGINAL = 'multipart/related; type="application/dicom"; transfer-syntax=*';
/** For servers that refuse `transfer-syntax=*`: whatever syntax they send by default. */
const ACCEPT_DEFAULT = 'multipart/related; type="application/dicom"';
/** A QIDO page is at most pageSize (<= 5000) small objects: anything near this is not one. */
const MAX_QIDO_BYTES = 64 << 20;
/** Commits (fsync) overlap the download of the next parts, up to this many at once. */
const MAX_PENDING_COMMITS = 4;

const STUDY_FIELDS = ['StudyInstanceUID', 'PatientID', 'AccessionNumber', 'StudyDate', 'StudyDescription', 'ModalitiesInStudy', 'NumberOfStudyRelatedInstances'];
const SERIES_FIELDS = ['SeriesInstanceUID', 'Modality', 'NumberOfSeriesRelatedInstances'];
const INSTANCE_FIELDS = ['SOPInstanceUID', 'SOPClassUID'];

/**
 * Path templates: the only way a request is named in errors. Real paths and query values carry
 * UIDs, patient IDs and accession numbers (PHI) and must never reach a message or a log.
 */
const WHAT = {
  studies: 'QIDO /studies',
  series: 'QIDO /studies/{study}/series',
  instances: 'QIDO /studies/{study}/series/{series}/instances',
  retrieveSeries: 'WADO /studies/{study}/series/{series}',
  retrieveInstance: 'WADO /studies/{study}/series/{series}/instances/{instance}',
};

/**
 * An export source on a DICOMweb PACS: QIDO-RS to find, WADO-RS to retrieve into the sink.
 *
 * - HTTP on Node's own http/https with one keep-alive agent, not dicomweb-client + xhr2 (byte
 *   by byte body copies, a whole series in memory: README.md, "STOW-RS without
 *   dicomweb-client"). Every request, page by page, goes through the source's SourceLimiter;
 *   a retrieve holds its slot while it streams.
 * - QIDO: `limit`/`offset` paging by `pageSize`, going on while a page is full (or the server
 *   says in a Warning header that there is more). A server that ignores offset is caught by
 *   a page that brings no new UID. 204 and `[]` are zero results.
 * - findStudies: one query per value of the shortest list (study UIDs, accession numbers,
 *   patient IDs) and per modality, the other constraints as query keys (a list of several
 *   values other than the shortest is only checked here). Values go unencoded, with wildcards
 *   for what would need encoding (qidoValue). Studies are deduplicated by StudyInstanceUID and
 *   every answer is checked again here against the whole query, because PACS ignore keys or
 *   match more loosely than asked (Orthanc matches PatientID case-insensitively). A
 *   constraint whose attribute is missing from the answer is trusted to the server if it was
 *   sent, and fails otherwise. An empty list matches nothing.
 * - WADO-RS asks for `transfer-syntax=*` (the stored bytes) and, on a 400/406 for that, once
 *   more without it. The multipart answer is parsed as it arrives (MultipartParser): one sink
 *   writer per part, data written as it comes, committed at the part's end; memory stays at a
 *   socket chunk or so whatever the series size (2 GiB from a local server: 3 s, RSS +50 MB,
 *   measured). A part that is not application/dicom counts as failed. A cut connection or a
 *   timeout aborts the open writer and throws a transient RetrieveError whose `partial`
 *   counts the instances already committed. retrieveInstances counts an instance answered
 *   with 404 as failed and goes on.
 * - Errors: no answer, a timeout (`timeoutMs` is a socket idle timeout), 408/429/5xx ->
 *   SourceError(transient); other statuses -> SourceError(permanent, status). Messages name
 *   the request by its path template only (WHAT). An aborted signal rejects with its reason.
 * - Auth and TLS exactly as the STOW-RS destination (../../forward/auth-header.ts).
 */
export class DicomwebSource implements ExportSource {
  readonly delivery = 'sink' as const;
  private readonly base: string;
  private readonly agent: http.Agent;
  private readonly limiter: SourceLimiter;

  constructor(
    readonly name: string,
    private readonly cfg: DicomwebSourceConfig,
    private readonly secrets: SecretSource,
    limiter?: SourceLimiter,
  ) {
    this.base = cfg.url.replace(/\/+$/, '');
    this.limiter = limiter ?? new SourceLimiter({ maxConcurrent: cfg.maxConcurrent, requestsPerSecond: cfg.requestsPerSecond });
    const options = { keepAlive: true, maxSockets: cfg.maxConcurrent };
    this.agent = new URL(this.base).protocol === 'https:'
      ? new https.Agent({ ...options, ca: cfg.tls.caFile ? secrets.readFile(cfg.tls.caFile) : undefined, rejectUnauthorized: cfg.tls.rejectUnauthorized })
      : new http.Agent(options);
    // Fail at start, with the field named, when the configured secret is not there.
    this.authHeaders();
  }

  private authHeaders(): Record<string, string> {
    return authHeaders(this.cfg.auth, this.secrets, `source ${this.name}`);
  }

  // ------------------------------------------------------------------ QIDO-RS

  async findStudies(query: ExportQuery, signal?: AbortSignal): Promise<StudyRef[]> {
    const found = new Map<string, StudyRef>();
    for (const plan of planStudyQueries(query)) {
      const params: Param[] = [...plan.params, ...STUDY_FIELDS.map((f): Param => ['includefield', f])];
      for (const ds of await this.qidoAll(WHAT.studies, '/studies', params, TAG.StudyInstanceUID, signal)) {
        const study = toStudyRef(ds);
        if (study && !found.has(study.studyUid) && matchesQuery(ds, query, plan.sent)) found.set(study.studyUid, study);
      }
    }
    return [...found.values()];
  }

  async findSeries(studyUid: string, signal?: AbortSignal): Promise<SeriesRef[]> {
    const params = SERIES_FIELDS.map((f): Param => ['includefield', f]);
    const list = await this.qidoAll(WHAT.series, `/studies/${seg(studyUid)}/series`, params, TAG.SeriesInstanceUID, signal);
    return list.map((ds) => ({
      studyUid,
      seriesUid: text(ds, TAG.SeriesInstanceUID)!,
      modality: text(ds, TAG.Modality),
      numberOfInstances: count(ds, TAG.NumberOfSeriesRelatedInstances),
    }));
  }

  async findInstances(studyUid: string, seriesUid: string, signal?: AbortSignal): Promise<InstanceRef[]> {
    const params = INSTANCE_FIELDS.map((f): Param => ['includefield', f]);
    const path = `/studies/${seg(studyUid)}/series/${seg(seriesUid)}/instances`;
    const list = await this.qidoAll(WHAT.instances, path, params, TAG.SOPInstanceUID, signal);
    return list.map((ds) => ({ studyUid, seriesUid, sopInstanceUid: text(ds, TAG.SOPInstanceUID)!, sopClassUid: text(ds, TAG.SOPClassUID) }));
  }

  async probe(signal?: AbortSignal): Promise<void> {
    await this.qidoPage(WHAT.studies, '/studies', [['limit', '1']], signal);
  }

  /**
   * Every page of one QIDO query; objects without a `uidTag` value, or seen on an earlier page,
   * are dropped (the answer is deduplicated by that UID).
   */
  private async qidoAll(what: string, path: string, params: Param[], uidTag: string, signal?: AbortSignal): Promise<DicomJsonObject[]> {
    const size = this.cfg.pageSize;
    const seen = new Set<string>();
    const all: DicomJsonObject[] = [];
    for (let offset = 0; ;) {
      const { page, more } = await this.qidoPage(what, path, [...params, ['limit', String(size)], ['offset', String(offset)]], signal);
      const fresh = page.filter((ds) => {
        const uid = text(ds, uidTag);
        if (!uid || seen.has(uid)) return false;
        seen.add(uid);
        return true;
      });
      all.push(...fresh);
      // `>=`: a server that ignored limit may still have more; one that ignores offset repeats
      // the page and brings nothing new.
      if (!fresh.length || !(page.length >= size || more)) return all;
      offset += page.length;
    }
  }

  private qidoPage(what: string, path: string, params: Param[], signal?: AbortSignal): Promise<{ page: DicomJsonObject[]; more: boolean }> {
    return this.exchange(what, path + queryString(params), DICOM_JSON, signal, async (res) => {
      const body = await readBody(res, MAX_QIDO_BYTES, `${this.name}: ${what}`);
      const page = res.statusCode === 204 ? [] : parseDatasets(body);
      if (!page) throw new SourceError(`${this.name}: ${what}: the answer is not a DICOM JSON array`, false, res.statusCode);
      // PS3.18 8.3.4.4: a server that cut the answer short says so in a 299 Warning.
      const more = /more|additional/i.test(String(res.headers.warning ?? ''));
      return { page, more };
    });
  }

  // ------------------------------------------------------------------ WADO-RS

  async retrieveSeries(series: SeriesRef, sink: RetrieveSink, opts: RetrieveOptions = {}): Promise<RetrieveResult> {
    const tally = new Tally(opts.onProgress, series.numberOfInstances);
    await withPartial(tally, () => this.wado(WHAT.retrieveSeries, `/studies/${seg(series.studyUid)}/series/${seg(series.seriesUid)}`, sink, tally, opts.signal));
    return tally.result();
  }

  /**
   * One WADO-RS request per instance, one after the other. An instance the PACS no longer has
   * (404) counts as failed and the others go on; any other failure ends the call.
   */
  async retrieveInstances(instances: InstanceRef[], sink: RetrieveSink, opts: RetrieveOptions = {}): Promise<RetrieveResult> {
    const tally = new Tally(opts.onProgress, instances.length);
    await withPartial(tally, async () => {
      for (const i of instances) {
        const path = `/studies/${seg(i.studyUid)}/series/${seg(i.seriesUid)}/instances/${seg(i.sopInstanceUid)}`;
        try {
          await this.wado(WHAT.retrieveInstance, path, sink, tally, opts.signal);
        } catch (err) {
          if (!(err instanceof SourceError && err.status === 404)) throw err;
          tally.failed();
        }
      }
    });
    return tally.result();
  }

  private async wado(what: string, path: string, sink: RetrieveSink, tally: Tally, signal?: AbortSignal): Promise<void> {
    const receive = (res: http.IncomingMessage): Promise<void> => receiveParts(res, sink, tally, `${this.name}: ${what}`);
    try {
      await this.exchange(what, path, ACCEPT_ORIGINAL, signal, receive);
    } catch (err) {
      // A status error comes before any part was read, so asking again duplicates nothing.
      if (!(err instanceof SourceError && (err.status === 406 || err.status === 400))) throw err;
      await this.exchange(what, path, ACCEPT_DEFAULT, signal, receive);
    }
  }

  // ------------------------------------------------------------------ HTTP

  /**
   * One GET through the limiter. `consume` reads a 2xx answer (and owns its errors); any other
   * status is a SourceError. Network failures and timeouts become transient SourceErrors; an
   * aborted signal rejects with its reason; the sink's own errors pass through unchanged.
   */
  private exchange<T>(what: string, pathAndQuery: string, accept: string, signal: AbortSignal | undefined, consume: (res: http.IncomingMessage) => Promise<T>): Promise<T> {
    return this.limiter.run(async () => {
      // Aborted between getting the slot and here: the abort listener below would never fire.
      signal?.throwIfAborted();
      let headers: Record<string, string>;
      try {
        headers = { ...this.authHeaders(), Accept: accept };
      } catch (err) {
        // The secret file may be restored (or the token rotated in) before the next attempt.
        throw new SourceError((err as Error).message, true);
      }
      const call = new GetCall(new URL(this.base + pathAndQuery), headers, this.agent, this.cfg.timeoutMs, signal);
      try {
        const res = await call.response;
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) throw new SourceError(`${this.name}: ${what}: HTTP ${status}`, isTransientStatus(status), status);
        return await consume(res);
      } catch (err) {
        throw call.explain(err, `${this.name}: ${what}`);
      } finally {
        call.dispose();
      }
    }, signal);
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

type Param = [string, string];

function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** A UID as one path segment. */
function seg(uid: string): string {
  return encodeURIComponent(uid.trim());
}

/** `?k=v&...` with every value made safe to send as it is (qidoValue). */
function queryString(params: Param[]): string {
  return params.length ? `?${params.map(([k, v]) => `${k}=${qidoValue(v)}`).join('&')}` : '';
}

/**
 * A QIDO value as sent, with nothing percent-encoded: Orthanc 1.10 + DICOMweb 1.7 does not
 * decode query values (`Knee%20MR` matches nothing, measured). A character outside
 * `[A-Za-z0-9-._~*?]` (space, comma - QIDO's value separator -, slash, ...) becomes the
 * wildcard `?`, a non-ASCII one `*` (its length in the PACS's character set is unknown). The
 * server then matches a superset, and matchesQuery() checks the answers exactly.
 */
export function qidoValue(v: string): string {
  return [...v].map((c) => (/^[A-Za-z0-9\-._~*?]$/.test(c) ? c : c.charCodeAt(0) < 0x80 ? '?' : '*')).join('').replace(/\*+/g, '*');
}

async function readBody(res: http.IncomingMessage, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new SourceError(`${what}: answer larger than ${max >> 20} MB`, false, res.statusCode);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/**
 * One GET on Node's http/https. A request that fails on a reused keep-alive socket before any
 * answer (the server closed the idle connection as we reused it) is sent once more on a new
 * socket. Keeps what `explain` needs to tell a timeout, an abort, a network failure and an
 * error thrown by the caller apart: after the answer, Node reports all of them on the response
 * as the same ECONNRESET "aborted".
 */
class GetCall {
  readonly response: Promise<http.IncomingMessage>;
  private req: http.ClientRequest | null = null;
  private res: http.IncomingMessage | null = null;
  private timedOut = false;
  /** The last error Node reported on the request or the response. */
  private networkError: unknown = null;
  private readonly onAbort = (): void => { this.req?.destroy(this.signal!.reason as Error); };

  constructor(
    private readonly url: URL,
    private readonly headers: Record<string, string>,
    private readonly agent: http.Agent,
    private readonly timeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {
    signal?.addEventListener('abort', this.onAbort, { once: true });
    this.response = this.send().catch((err: Error & { code?: string; reusedSocket?: boolean }) => {
      if (err.reusedSocket && !this.signal?.aborted && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return this.send();
      throw err;
    });
  }

  private send(): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const mod = this.url.protocol === 'https:' ? https : http;
      const req = mod.request(this.url, { method: 'GET', headers: this.headers, agent: this.agent });
      this.req = req;
      req.setTimeout(this.timeoutMs, () => {
        this.timedOut = true;
        req.destroy(Object.assign(new Error(`no data for ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      });
      req.on('error', (err) => {
        this.networkError = err;
        reject(Object.assign(err, { reusedSocket: req.reusedSocket }));
      });
      req.on('response', (res) => {
        this.res = res;
        res.on('error', (err) => { this.networkError = err; });
        resolve(res);
      });
      req.end();
    });
  }

  /** What to throw for `err`, raised while sending or while the caller read the answer. */
  explain(err: unknown, what: string): unknown {
    if (this.signal?.aborted) return this.signal.reason;
    if (this.timedOut) return new SourceError(`${what}: no data for ${this.timeoutMs} ms`, true);
    if (err !== this.networkError) return err;
    const code = (err as { code?: string }).code ?? 'network error';
    return new SourceError(this.res ? `${what}: connection lost during the answer (${code})` : `${what}: no answer (${code})`, true);
  }

  /** An answer not read to its end leaves bytes on the socket: close it rather than reuse it. */
  dispose(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    if (!this.res?.complete) this.req?.destroy();
  }
}

// -------------------------------------------------------------------- retrieve

/** Counts a retrieve's outcome and reports progress after each part. */
class Tally {
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
async function withPartial(tally: Tally, fn: () => Promise<void>): Promise<void> {
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
 * Streams a WADO-RS multipart answer into the sink, one writer per part. `data` views go
 * straight to the writer: InstanceWriter.write consumes them synchronously. On any failure the
 * open writer is aborted (no half instance reaches the spool) after the commits in flight
 * settle, and the failure is thrown.
 */
async function receiveParts(res: http.IncomingMessage, sink: RetrieveSink, tally: Tally, what: string): Promise<void> {
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

// -------------------------------------------------------------------- query planning

type QueryField = keyof ExportQuery;
type ListField = 'studyUids' | 'accessionNumbers' | 'patientIds';

/** One QIDO /studies query (before paging and includefield) and the constraints it sends. */
export interface StudyQueryPlan {
  params: Param[];
  sent: Set<QueryField>;
}

const LIST_KEYS: Record<ListField, string> = { studyUids: 'StudyInstanceUID', accessionNumbers: 'AccessionNumber', patientIds: 'PatientID' };

/**
 * The QIDO queries for an ExportQuery: one per value of the shortest list field (the others
 * are sent when they have a single value, else only checked here) and per modality. None when
 * a list is empty: an empty OR matches nothing.
 */
export function planStudyQueries(q: ExportQuery): StudyQueryPlan[] {
  const common: Param[] = [];
  const sent = new Set<QueryField>();
  const range = dateRange(q.studyDate);
  if (range) {
    common.push(['StudyDate', range]);
    sent.add('studyDate');
  }
  if (q.studyDescription !== undefined && q.studyDescription.trim()) {
    common.push(['StudyDescription', q.studyDescription.trim()]);
    sent.add('studyDescription');
  }
  const lists = (Object.keys(LIST_KEYS) as ListField[])
    .filter((f) => q[f] !== undefined)
    .map((f) => ({ field: f, values: distinct(q[f]!) }))
    .sort((a, b) => a.values.length - b.values.length);
  const modalities = q.modalitiesInStudy === undefined ? undefined : distinct(q.modalitiesInStudy.map((m) => m.toUpperCase()));
  if (lists.some((l) => !l.values.length) || modalities?.length === 0) return [];
  const [driver, ...others] = lists;
  for (const l of others) {
    if (l.values.length !== 1) continue;
    common.push([LIST_KEYS[l.field], l.values[0]]);
    sent.add(l.field);
  }
  if (driver) sent.add(driver.field);
  if (modalities) sent.add('modalitiesInStudy');
  const driverParams: Array<Param | null> = driver ? driver.values.map((v): Param => [LIST_KEYS[driver.field], v]) : [null];
  const modalityParams: Array<Param | null> = modalities ? modalities.map((m): Param => ['ModalitiesInStudy', m]) : [null];
  const plans: StudyQueryPlan[] = [];
  for (const d of driverParams) {
    for (const m of modalityParams) plans.push({ params: [...common, ...(d ? [d] : []), ...(m ? [m] : [])], sent });
  }
  return plans;
}

function distinct(values: string[]): string[] {
  return [...new Set(values.map((v) => v.trim()).filter((v) => v))];
}

const DATE = /^\d{8}$/;

/** `from-to` (either end may be open), or undefined when there is no bound at all. */
function dateRange(d: ExportQuery['studyDate']): string | undefined {
  if (!d || (!d.from && !d.to)) return undefined;
  for (const [end, v] of [['from', d.from], ['to', d.to]] as const) {
    if (v && !DATE.test(v)) throw new SourceError(`studyDate.${end} is not YYYYMMDD`, false);
  }
  return `${d.from ?? ''}-${d.to ?? ''}`;
}

/** true/false, or undefined when the answer lacks the attribute. */
type Verdict = boolean | undefined;

const CHECKS: Array<[QueryField, (ds: DicomJsonObject, q: ExportQuery) => Verdict]> = [
  ['studyUids', (ds, q) => inList(q.studyUids, text(ds, TAG.StudyInstanceUID))],
  ['patientIds', (ds, q) => inList(q.patientIds, text(ds, TAG.PatientID))],
  ['accessionNumbers', (ds, q) => inList(q.accessionNumbers, text(ds, TAG.AccessionNumber))],
  ['studyDate', (ds, q) => inDateRange(q.studyDate, text(ds, TAG.StudyDate))],
  ['modalitiesInStudy', (ds, q) => anyModality(q.modalitiesInStudy, texts(ds, TAG.ModalitiesInStudy))],
  ['studyDescription', (ds, q) => wildcardMatch(q.studyDescription, text(ds, TAG.StudyDescription))],
];

/**
 * The study answers the whole query. An attribute missing from the answer cannot be checked:
 * the server's word is taken when the constraint was sent to it, and the study is left out
 * otherwise (better a study too few than one that was not asked for).
 */
export function matchesQuery(ds: DicomJsonObject, q: ExportQuery, sent: Set<QueryField>): boolean {
  return CHECKS.every(([field, check]) => {
    const v = check(ds, q);
    return v === undefined ? sent.has(field) : v;
  });
}

function inList(values: string[] | undefined, got: string | undefined): Verdict {
  if (values === undefined) return true;
  return got === undefined ? undefined : values.some((v) => v.trim() === got);
}

function inDateRange(range: ExportQuery['studyDate'], got: string | undefined): Verdict {
  if (!range || (!range.from && !range.to)) return true;
  // Old-style values (`2024.01.05`) compare once reduced to their digits.
  const d = got?.replace(/\D/g, '');
  if (!d || !DATE.test(d)) return undefined;
  return (!range.from || d >= range.from) && (!range.to || d <= range.to);
}

function anyModality(wanted: string[] | undefined, got: string[]): Verdict {
  if (wanted === undefined) return true;
  if (!got.length) return undefined;
  const have = new Set(got.map((m) => m.toUpperCase()));
  return wanted.some((m) => have.has(m.trim().toUpperCase()));
}

function wildcardMatch(pattern: string | undefined, got: string | undefined): Verdict {
  if (pattern === undefined || !pattern.trim()) return true;
  const re = wildcardRegExp(pattern.trim());
  // A missing description is an empty one for a pattern that matches anything (`*`).
  if (got === undefined) return re.test('') ? true : undefined;
  return re.test(got);
}

/** DICOM wildcard matching (PS3.4 C.2.2.2.4): `*` any run, `?` one character; case-insensitive here. */
export function wildcardRegExp(pattern: string): RegExp {
  const body = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, 'is');
}

function toStudyRef(ds: DicomJsonObject): StudyRef | null {
  const studyUid = text(ds, TAG.StudyInstanceUID);
  if (!studyUid) return null;
  const modalities = texts(ds, TAG.ModalitiesInStudy);
  return {
    studyUid,
    patientId: text(ds, TAG.PatientID),
    accessionNumber: text(ds, TAG.AccessionNumber),
    studyDate: text(ds, TAG.StudyDate),
    studyDescription: text(ds, TAG.StudyDescription),
    modalities: modalities.length ? modalities : undefined,
    numberOfInstances: count(ds, TAG.NumberOfStudyRelatedInstances),
  };
}
