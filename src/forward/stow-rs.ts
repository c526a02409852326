import * as http from 'node:http';
import * as https from 'node:https';
import type { DestinationConfig } from '../config/schema';
import { authHeaders } from './auth-header';
import { Destination, OutgoingInstance, SecretSource, SendResults } from './destination';
import { PermanentError, TransientError, hex4, httpStatusError } from './errors';
import { BodyWriter, HttpError, HttpResponse, httpRequest, MultipartPart, multipartRelated } from './http-multipart';
import { KeepAliveAgent, KeepAliveHttpsAgent } from './keep-alive-agent';
import { fileOf, outgoingName, outgoingSize } from './outgoing';

export type StowRsConfig = Extract<DestinationConfig, { type: 'stow-rs' }>;

/**
 * STOW-RS destination over Node's http/https (./http-multipart.ts), not dicomweb-client + xhr2:
 * see README.md ("Library findings") for the measured reason.
 *
 * - One request per study (`POST {url}/studies/{StudyInstanceUID}`) and at most `batchSize`
 *   instances / `maxBatchMB` per request (an instance larger than the bound goes alone).
 *   Requests of one send() go one after the other.
 * - Every instance is the file's exact bytes (Part 10, meta group included).
 * - The response body is read whatever the status: instances in ReferencedSOPSequence
 *   (0008,1199) were stored, instances in FailedSOPSequence (0008,1198) were refused with their
 *   FailureReason (0008,1197) -> PermanentError `STOW_FAILURE_xxxx` (0xA7xx "out of resources"
 *   -> TransientError). Measured with Orthanc 1.10 + DICOMweb 1.7: a partial failure is a 409
 *   (not a 202) listing both sequences, and an unreadable part gives a 400 that still lists the
 *   instances it did store; so a 4xx does not mean "nothing stored".
 * - Instances the body does not mention: success for 200/202 without a FailedSOPSequence entry,
 *   otherwise the HTTP status decides (408/429/5xx transient, other 4xx permanent);
 *   no HTTP answer -> TransientError with the Node error code (ECONNREFUSED, ECONNRESET,
 *   ETIMEDOUT, ...; certificate errors as TLS_<code>).
 * - Auth (./auth-header.ts, shared with the DICOMweb export source): `Authorization: Bearer
 *   <token>` or `Basic <base64(user:password)>`, the secret read from its file (trimmed) or
 *   environment variable at every request, so a rotated token is picked up without a restart.
 * - Connections: one keep-alive agent per destination (./keep-alive-agent.ts: also when the
 *   server hints a 1 s keep-alive, as Orthanc does) (https: the
 *   configured CA file and rejectUnauthorized). `timeoutMs` is a socket idle timeout
 *   (ClientRequest.setTimeout), not a bound on the whole upload.
 * - The body (`multipart/related; type="application/dicom"`) is written part by part from the
 *   files, in chunks of at most 1 MiB read into reused buffers, with a Content-Length from the
 *   file sizes: a request holds about one chunk in memory, whatever the batch size. maxBatchMB
 *   still bounds a request.
 */
export class StowRsDestination implements Destination {
  private readonly url: string;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(
    readonly name: string,
    private readonly cfg: StowRsConfig,
    private readonly secrets: SecretSource,
  ) {
    this.url = cfg.url.replace(/\/+$/, '');
    this.httpAgent = new KeepAliveAgent({ maxSockets: 4 });
    this.httpsAgent = new KeepAliveHttpsAgent({
      maxSockets: 4,
      ca: cfg.tls.caFile ? secrets.readFile(cfg.tls.caFile) : undefined,
      rejectUnauthorized: cfg.tls.rejectUnauthorized,
    });
    // Fail at start, with the field named, when the configured secret is not there.
    this.authHeaders();
  }

  /** The Authorization header for the configured auth (secret re-read on every call). */
  authHeaders(): Record<string, string> {
    return authHeaders(this.cfg.auth, this.secrets, `destination ${this.name}`);
  }

  async send(instances: OutgoingInstance[]): Promise<SendResults> {
    const results: SendResults = new Map();
    const batches = await this.plan(instances, results);
    let stored = false;
    for (let b = 0; b < batches.length; b++) {
      const batch = batches[b];
      const r = await this.sendBatch(batch);
      for (const [sop, e] of r) results.set(sop, e);
      const all = batch.map((i) => r.get(i.sopInstanceUid));
      if (all.some((e) => e === null)) stored = true;
      if (all.every((e) => e instanceof TransientError)) {
        // The destination is not taking requests now: do not try the other batches.
        const err = all[0] as TransientError;
        for (const rest of batches.slice(b + 1)) for (const i of rest) results.set(i.sopInstanceUid, err);
        if (!stored && [...results.values()].every((e) => e instanceof TransientError)) throw err;
        break;
      }
    }
    return results;
  }

  /** Groups by study (first-seen order) and cuts groups at batchSize / maxBatchMB. */
  private async plan(instances: OutgoingInstance[], results: SendResults): Promise<Array<Array<OutgoingInstance & { size: number }>>> {
    const maxBytes = this.cfg.maxBatchMB * 1024 * 1024;
    const byStudy = new Map<string, Array<OutgoingInstance & { size: number }>>();
    for (const inst of instances) {
      let size: number;
      try {
        size = await outgoingSize(inst);
      } catch (err) {
        results.set(inst.sopInstanceUid, fileError(err, inst));
        continue;
      }
      const list = byStudy.get(inst.studyUid) ?? [];
      list.push({ ...inst, size });
      byStudy.set(inst.studyUid, list);
    }
    const batches: Array<Array<OutgoingInstance & { size: number }>> = [];
    for (const list of byStudy.values()) {
      let cur: Array<OutgoingInstance & { size: number }> = [];
      let bytes = 0;
      for (const inst of list) {
        if (cur.length && (cur.length >= this.cfg.batchSize || bytes + inst.size > maxBytes)) {
          batches.push(cur);
          cur = [];
          bytes = 0;
        }
        cur.push(inst);
        bytes += inst.size;
      }
      if (cur.length) batches.push(cur);
    }
    return batches;
  }

  /** One STOW-RS request for instances of one study. */
  private async sendBatch(batch: OutgoingInstance[]): Promise<SendResults> {
    const results: SendResults = new Map();
    const parts: MultipartPart[] = [];
    const sent: OutgoingInstance[] = [];
    for (const inst of batch) {
      try {
        // The size now (not at plan time): it is promised in Content-Length.
        parts.push(inst.bytes ? { bytes: inst.bytes } : { file: fileOf(inst), size: await outgoingSize(inst) });
        sent.push(inst);
      } catch (err) {
        results.set(inst.sopInstanceUid, fileError(err, inst));
      }
    }
    if (!sent.length) return results;
    const study = sent[0].studyUid;
    const what = `${this.name}: STOW-RS of ${sent.length} instance(s) of study ${study}`;
    let headers: Record<string, string>;
    try {
      headers = this.authHeaders();
    } catch (err) {
      const e = new TransientError('AUTH_SECRET_MISSING', (err as Error).message);
      for (const i of sent) results.set(i.sopInstanceUid, e);
      return results;
    }
    const body = multipartRelated(parts, 'application/dicom');
    let res: HttpResponse;
    try {
      res = await this.request('POST', `/studies/${encodeURIComponent(study)}`, {
        ...headers,
        Accept: 'application/dicom+json',
        'Content-Type': body.contentType,
        'Content-Length': body.contentLength,
      }, body.write);
    } catch (err) {
      const t = noAnswerError(err as HttpError, what);
      for (const i of sent) results.set(i.sopInstanceUid, t);
      return results;
    }
    const status = res.status;
    const outcome = parseStoreResponse(res.body);
    for (const inst of sent) {
      const failure = outcome.failed.get(inst.sopInstanceUid);
      if (failure !== undefined) {
        results.set(inst.sopInstanceUid, failureReasonError(failure, `${what}: ${inst.sopInstanceUid} refused`));
      } else if (outcome.referenced.has(inst.sopInstanceUid) || status === 200 || status === 202 || status === 204) {
        results.set(inst.sopInstanceUid, null);
      } else {
        results.set(inst.sopInstanceUid, httpStatusError(status, what, outcome.failed.size || outcome.referenced.size ? '(instance not in the response)' : ''));
      }
    }
    return results;
  }

  private request(method: 'GET' | 'POST', pathAndQuery: string, headers: Record<string, string | number>, body?: BodyWriter): Promise<HttpResponse> {
    const url = new URL(this.url + pathAndQuery);
    const agent = url.protocol === 'https:' ? this.httpsAgent : this.httpAgent;
    return httpRequest(url, { method, headers, agent, timeoutMs: this.cfg.timeoutMs, body });
  }

  /** QIDO-RS `GET {url}/studies?limit=1` answers 2xx. */
  async probe(): Promise<boolean> {
    try {
      const res = await this.request('GET', '/studies?limit=1', { ...this.authHeaders(), Accept: 'application/dicom+json' });
      return res.status >= 200 && res.status < 300;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

// ---------------------------------------------------------------- response

export interface StoreOutcome {
  /** SOP Instance UID -> FailureReason (0 when absent). */
  failed: Map<string, number>;
  referenced: Set<string>;
}

/** Reads the STOW-RS response (DICOM JSON, as a string or parsed); tolerates anything. */
export function parseStoreResponse(body: unknown): StoreOutcome {
  const out: StoreOutcome = { failed: new Map(), referenced: new Set() };
  let json: unknown = body;
  if (typeof body === 'string') {
    try {
      json = body.trim() ? JSON.parse(body) : null;
    } catch {
      json = null;
    }
  } else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    try {
      json = JSON.parse(Buffer.from(body as ArrayBuffer).toString('utf8'));
    } catch {
      json = null;
    }
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return out;
  const root = json as Record<string, DicomJsonElement | undefined>;
  for (const item of items(root['00081198'])) {
    const sop = firstString(item['00081155']);
    if (sop) out.failed.set(sop, firstNumber(item['00081197']) ?? 0);
  }
  for (const item of items(root['00081199'])) {
    const sop = firstString(item['00081155']);
    if (sop) out.referenced.add(sop);
  }
  return out;
}

interface DicomJsonElement {
  vr?: string;
  Value?: unknown[];
}

function items(el: DicomJsonElement | undefined): Array<Record<string, DicomJsonElement | undefined>> {
  return Array.isArray(el?.Value) ? (el.Value.filter((v) => v && typeof v === 'object') as Array<Record<string, DicomJsonElement | undefined>>) : [];
}
function firstString(el: DicomJsonElement | undefined): string | undefined {
  const v = el?.Value?.[0];
  return typeof v === 'string' ? v : undefined;
}
function firstNumber(el: DicomJsonElement | undefined): number | undefined {
  const v = el?.Value?.[0];
  return typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** FailureReason -> error: 0xA7xx (out of resources) is transient, anything else permanent. */
export function failureReasonError(reason: number, what: string): TransientError | PermanentError {
  const code = `STOW_FAILURE_${hex4(reason)}`;
  const message = `${what} (FailureReason 0x${hex4(reason)}${FAILURE_REASONS[reason] ? ` ${FAILURE_REASONS[reason]}` : ''})`;
  return (reason & 0xff00) === 0xa700 ? new TransientError(code, message) : new PermanentError(code, message);
}

/** PS3.18 Table I.2-1 / PS3.4 failure reasons seen in STOW-RS responses. */
const FAILURE_REASONS: Record<number, string> = {
  0x0110: 'Processing failure',
  0x0111: 'Duplicate SOP Instance',
  0x0117: 'Invalid SOP Instance',
  0x0122: 'Referenced SOP Class not supported',
  0x0124: 'Refused: not authorized',
  0xa700: 'Refused: out of resources',
  0xa770: 'Refused: out of resources (subtype)',
  0xa900: 'Error: data set does not match SOP Class',
  0xc000: 'Error: cannot understand',
  0xc122: 'Referenced Transfer Syntax not supported',
};

/** No HTTP answer: say why, from the Node error (a certificate problem is TLS_<code>). */
function noAnswerError(err: HttpError, what: string): TransientError {
  const code = err?.code ?? 'STOW_ERROR';
  const tls = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME/i.test(code);
  return new TransientError(tls ? `TLS_${code}` : code, `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function fileError(err: unknown, inst: OutgoingInstance): Error {
  const code = (err as NodeJS.ErrnoException).code ?? 'FS_ERROR';
  const message = `cannot read ${outgoingName(inst)} (${inst.sopInstanceUid}): ${(err as Error).message}`;
  return code === 'EMFILE' || code === 'ENFILE' || code === 'EIO' || code === 'EAGAIN'
    ? new TransientError(code, message, { cause: err })
    : new PermanentError(`FS_${code}`, message, { cause: err });
}
