import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

/**
 * A small HTTP client on Node's own http/https for the STOW-RS destination:
 * - `multipartRelated()` writes a `multipart/related` body part by part, from memory or from
 *   files on disk (read in chunks of at most 1 MiB, one file open at a time), with its exact
 *   length known up front from the sizes, so the request has a `Content-Length` and the batch
 *   is never concatenated in memory. The chunks are read into a few buffers reused from request to
 *   request (each back in the pool once the socket has taken its bytes): a fresh buffer per
 *   file was 0.5 MB of external memory per instance, and the garbage collections it forced
 *   were the largest item of the gateway's main thread under load.
 * - `httpRequest()` sends one request through the caller's (keep-alive) agent, with a socket
 *   idle timeout, and resolves with the status and the whole response body. A network failure
 *   rejects with the Node error itself (its `code`: ECONNREFUSED, ECONNRESET, ETIMEDOUT, TLS
 *   certificate codes...). A request that fails on a reused keep-alive socket before any answer
 *   (the server closed the idle connection as we reused it) is sent once more on a new socket;
 *   that is why the body can be written more than once.
 */

/** One part of the body: a whole file, or bytes already in memory (sent as they are). */
export type MultipartPart =
  | {
      file: string;
      /** The file's size in bytes, as sent in Content-Length: a file that changed size fails the request. */
      size: number;
    }
  | { bytes: Buffer };

/** Writes a whole body into a request; rejects only when the body itself cannot be produced. */
export type BodyWriter = (req: http.ClientRequest) => Promise<void>;

export interface MultipartBody {
  contentType: string;
  contentLength: number;
  /** Writes the whole body (each call from the start). */
  write: BodyWriter;
}

const CHUNK = 1024 * 1024;
/** Buffers kept for reuse (the agents allow a few requests at once; more are allocated and dropped). */
const POOL_MAX = 8;
const pool: Buffer[] = [];

/** The request is gone (destroyed, closed): stop writing; its own events report why. */
class Stopped extends Error {}

/** `multipart/related; type="<partType>"; boundary=...` of the given parts, each one whole instance. */
export function multipartRelated(parts: MultipartPart[], partType: string): MultipartBody {
  const boundary = `deid-${randomBytes(16).toString('hex')}`;
  const head = (i: number): Buffer => Buffer.from(`${i ? '\r\n' : ''}--${boundary}\r\nContent-Type: ${partType}\r\n\r\n`, 'latin1');
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  let contentLength = tail.length;
  parts.forEach((p, i) => { contentLength += head(i).length + ('bytes' in p ? p.bytes.length : p.size); });
  const write: BodyWriter = async (req) => {
    const closed = new Promise<void>((resolve) => req.once('close', resolve));
    try {
      for (let i = 0; i < parts.length; i++) {
        await send(req, closed, head(i));
        const part = parts[i];
        if ('bytes' in part) {
          await send(req, closed, part.bytes);
          continue;
        }
        const { file, size } = part;
        const fh = await fs.promises.open(file, 'r');
        try {
          let pos = 0;
          while (pos < size) {
            const buf = pool.pop() ?? Buffer.allocUnsafe(CHUNK);
            let bytesRead: number;
            try {
              ({ bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, size - pos), pos));
            } catch (err) {
              release(buf);
              throw err;
            }
            if (bytesRead === 0) {
              release(buf);
              throw Object.assign(new Error(`${file} became shorter while it was being sent (${pos} of ${size} bytes)`), { code: 'FILE_CHANGED' });
            }
            pos += bytesRead;
            await send(req, closed, buf.subarray(0, bytesRead), () => release(buf));
          }
        } finally {
          await fh.close();
        }
      }
      await send(req, closed, tail);
    } catch (err) {
      if (!(err instanceof Stopped)) throw err;
    }
  };
  return { contentType: `multipart/related; type="${partType}"; boundary=${boundary}`, contentLength, write };
}

function release(buf: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(buf);
}

/**
 * Hands `chunk` to the request; `done` runs once the socket has taken its bytes (or the request
 * is gone), never before: only then may its buffer be reused. Waits for 'drain' when the
 * request asks for it; throws Stopped when the request is closed.
 */
async function send(req: http.ClientRequest, closed: Promise<void>, chunk: Buffer, done?: () => void): Promise<void> {
  if (req.destroyed) {
    done?.();
    throw new Stopped();
  }
  let settled = false;
  const written = new Promise<void>((resolve) => {
    const ok = req.write(chunk, () => {
      if (!settled) {
        settled = true;
        done?.();
      }
      resolve();
    });
    if (ok) resolve();
  });
  // A request destroyed with the chunk pending may never call back: its buffer is then dropped
  // (not reused), and the writer stops.
  const stopped = await Promise.race([written.then(() => false), closed.then(() => true)]);
  if (stopped) {
    settled = true;
    throw new Stopped();
  }
  if (req.writableNeedDrain) {
    const drained = await Promise.race([new Promise<boolean>((resolve) => req.once('drain', () => resolve(true))), closed.then(() => false)]);
    if (!drained) throw new Stopped();
  }
}

export interface HttpRequestOptions {
  method: 'GET' | 'POST';
  headers: Record<string, string | number>;
  agent: http.Agent | https.Agent;
  /** Socket idle timeout (no bytes either way for this long), not a bound on the whole request. */
  timeoutMs: number;
  body?: BodyWriter;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export type HttpError = Error & { code?: string };

export async function httpRequest(url: URL, opts: HttpRequestOptions): Promise<HttpResponse> {
  try {
    return await once(url, opts);
  } catch (err) {
    const e = err as HttpError & { reusedSocket?: boolean };
    if (e.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) return once(url, opts);
    throw err;
  }
}

function once(url: URL, opts: HttpRequestOptions): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    let answered = false;
    let settled = false;
    let timeout: HttpError | undefined;
    const fail = (err: HttpError, reusedSocket: boolean): void => {
      if (settled) return;
      settled = true;
      reject(Object.assign(timeout ?? err, { reusedSocket: reusedSocket && !answered }));
    };
    const req = mod.request(url, { method: opts.method, headers: opts.headers, agent: opts.agent });
    req.setTimeout(opts.timeoutMs, () => {
      timeout = Object.assign(new Error(`no data for ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' });
      req.destroy(timeout);
    });
    // Once answered, a socket error (say EPIPE: the server answered early and closed) is the
    // response's business: it ends or fails below.
    req.on('error', (err: HttpError) => { if (!answered || timeout) fail(err, req.reusedSocket); });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err: HttpError) => fail(err, false));
      res.on('close', () => { if (!res.complete) fail(Object.assign(new Error('connection closed before the whole response'), { code: 'ECONNRESET' }), false); });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    if (!opts.body) {
      req.end();
      return;
    }
    opts.body(req).then(
      () => { if (!req.destroyed) req.end(); },
      (err: HttpError) => {
        // A file could not be read: the request cannot be completed (its length is promised).
        req.destroy(err);
        fail(err, false);
      },
    );
  });
}
