import * as http from 'node:http';
import type { SourceConfig } from '../../config/schema';
import { authHeaders } from '../../forward/auth-header';
import { KeepAliveAgent, KeepAliveHttpsAgent } from '../../forward/keep-alive-agent';
import type { SecretSource } from '../../forward/destination';
import { SourceLimiter } from '../limiter';
import { FoundStudies } from '../query-plan';
import { ExportQuery, ExportSource, InstanceRef, RetrieveOptions, RetrieveResult, RetrieveSink, SeriesRef, SourceError, StudyRef } from '../types';
import { count, DicomJsonObject, parseDatasets, TAG, text, toStudyRef } from './dicomweb-json';
import { GetCall, httpStatusError, readBody } from './http-get';
import { INSTANCE_PARAMS, Param, queryString, SERIES_PARAMS, studyQueries } from './qido-query';
import { receiveParts, Tally, withPartial } from './wado-multipart';

export { RetrieveError } from './wado-multipart';

export type DicomwebSourceConfig = Extract<SourceConfig, { type: 'dicomweb' }>;

const DICOM_JSON = 'application/dicom+json';
/** The instances as stored (no transcoding): the de-identification works on the original bytes. */
const ACCEPT_ORIGINAL = 'multipart/related; type="application/dicom"; transfer-syntax=*';
/** For servers that refuse `transfer-syntax=*`: whatever syntax they send by default. */
const ACCEPT_DEFAULT = 'multipart/related; type="application/dicom"';
/** A QIDO page is at most pageSize (<= 5000) small objects: anything near this is not one. */
const MAX_QIDO_BYTES = 64 << 20;

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
 * - findStudies: the requests of ../query-plan.ts (one per value of the most selective list,
 *   one study UID each) as QIDO parameters (./qido-query.ts): values unencoded, with wildcards
 *   for what would need encoding. Studies are deduplicated by StudyInstanceUID and every answer
 *   is checked again against the whole query (studyMatches), because PACS ignore keys or match
 *   more loosely than asked (Orthanc matches PatientID case-insensitively).
 * - WADO-RS asks for `transfer-syntax=*` (the stored bytes) and, on a 400/406 for that, once
 *   more without it. The multipart answer is streamed into the sink as it arrives
 *   (./wado-multipart.ts; 2 GiB from a local server: 3 s, RSS +50 MB, measured). A cut
 *   connection or a timeout throws a transient RetrieveError whose `partial` counts the
 *   instances already committed. retrieveInstances counts an instance answered with 404 as
 *   failed and goes on.
 * - Errors: no answer, a timeout (`timeoutMs` is a socket idle timeout), 408/429/5xx ->
 *   SourceError(transient); other statuses -> SourceError(permanent, status). Messages name
 *   the request by its path template only (WHAT). An aborted signal rejects with its reason.
 *   (./http-get.ts)
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
    const options = { maxSockets: cfg.maxConcurrent };
    this.agent = new URL(this.base).protocol === 'https:'
      ? new KeepAliveHttpsAgent({ ...options, ca: cfg.tls.caFile ? secrets.readFile(cfg.tls.caFile) : undefined, rejectUnauthorized: cfg.tls.rejectUnauthorized })
      : new KeepAliveAgent(options);
    // Fail at start, with the field named, when the configured secret is not there.
    this.authHeaders();
  }

  private authHeaders(): Record<string, string> {
    return authHeaders(this.cfg.auth, this.secrets, `source ${this.name}`);
  }

  // ------------------------------------------------------------------ QIDO-RS

  async findStudies(query: ExportQuery, signal?: AbortSignal): Promise<StudyRef[]> {
    const found = new FoundStudies(query);
    for (const { params, sent } of studyQueries(query)) {
      for (const ds of await this.qidoAll(WHAT.studies, '/studies', params, TAG.StudyInstanceUID, signal)) found.add(toStudyRef(ds), sent);
    }
    return found.list();
  }

  async findSeries(studyUid: string, signal?: AbortSignal): Promise<SeriesRef[]> {
    const list = await this.qidoAll(WHAT.series, `/studies/${seg(studyUid)}/series`, SERIES_PARAMS, TAG.SeriesInstanceUID, signal);
    return list.map((ds) => ({
      studyUid,
      seriesUid: text(ds, TAG.SeriesInstanceUID)!,
      modality: text(ds, TAG.Modality),
      numberOfInstances: count(ds, TAG.NumberOfSeriesRelatedInstances),
    }));
  }

  async findInstances(studyUid: string, seriesUid: string, signal?: AbortSignal): Promise<InstanceRef[]> {
    const path = `/studies/${seg(studyUid)}/series/${seg(seriesUid)}/instances`;
    const list = await this.qidoAll(WHAT.instances, path, INSTANCE_PARAMS, TAG.SOPInstanceUID, signal);
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
        const bad = httpStatusError(res.statusCode ?? 0, `${this.name}: ${what}`);
        if (bad) throw bad;
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

/** A UID as one path segment. */
function seg(uid: string): string {
  return encodeURIComponent(uid.trim());
}
