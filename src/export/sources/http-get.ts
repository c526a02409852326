import * as http from 'node:http';
import * as https from 'node:https';
import { SourceError } from '../types';

/**
 * One HTTP GET of a DICOMweb source (QIDO-RS, WADO-RS) on Node's own http/https, and what its
 * answer means. Messages name the request by the caller's `what` only: real paths and query
 * values carry UIDs, patient IDs and accession numbers (PHI).
 */

/** A status outside 2xx as a SourceError: 408/429/5xx transient, anything else permanent. */
export function httpStatusError(status: number, what: string): SourceError | null {
  if (status >= 200 && status <= 299) return null;
  return new SourceError(`${what}: HTTP ${status}`, status === 408 || status === 429 || status >= 500, status);
}

/** The whole body, refused (permanent SourceError) once larger than `max` bytes. */
export async function readBody(res: http.IncomingMessage, max: number, what: string): Promise<Buffer> {
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
 * One GET. A request that fails on a reused keep-alive socket before any answer (the server
 * closed the idle connection as we reused it) is sent once more on a new socket. Keeps what
 * `explain` needs to tell a timeout, an abort, a network failure and an error thrown by the
 * caller apart: after the answer, Node reports all of them on the response as the same
 * ECONNRESET "aborted".
 */
export class GetCall {
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
    /** A socket idle timeout: no byte for this long. */
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

  /**
   * What to throw for `err`, raised while sending or while the caller read the answer: the
   * signal's reason when aborted, a transient SourceError for a timeout or a network failure,
   * `err` itself otherwise (the caller's own errors pass through unchanged).
   */
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
