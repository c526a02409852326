import type * as http from 'node:http';
import type * as https from 'node:https';

/**
 * Not used by the gateway any more: the STOW-RS destination sends over Node's http/https
 * (./http-multipart.ts). Kept for the tests that drive dicomweb-client as an independent
 * STOW-RS client (test/ingest/dicomweb-stow.test.ts).
 *
 * The one place that gives Node an XMLHttpRequest (dicomweb-client needs one: without it,
 * every call throws `ReferenceError: XMLHttpRequest is not defined`). `xhr2` is used, not
 * `xmlhttprequest-ssl` (which breaks STOW-RS).
 *
 * Besides the global, `createXhr()` makes one request object per HTTP request, which the
 * STOW-RS destination hands to dicomweb-client (`request.instance`), so that each request can
 * have:
 * - its own agents (xhr2's stable `nodejsSet({httpAgent, httpsAgent})`): keep-alive, and for
 *   https the CA file and rejectUnauthorized of the destination's TLS settings;
 * - a socket idle timeout (`timeout`; xhr2 maps it to `ClientRequest.setTimeout`);
 * - the Node error behind a network failure: XHR only reports status 0, but the gateway wants
 *   to say ECONNREFUSED vs ECONNRESET vs a TLS certificate error. xhr2 passes that error to
 *   its `_onHttpRequestError(request, error)`, which the subclass records before delegating.
 */

export interface NodeXhr {
  readonly status: number;
  readonly readyState: number;
  timeout: number;
  nodejsSet(options: { httpAgent?: http.Agent; httpsAgent?: https.Agent }): void;
  addEventListener(type: string, listener: () => void): void;
  /** The Node error of a failed request (connection refused, reset, TLS...), if any. */
  readonly nodeError: (Error & { code?: string }) | undefined;
  /** The socket idle timeout fired. */
  readonly timedOut: boolean;
}

interface Xhr2Class {
  new (): {
    _onHttpRequestError?(request: unknown, error: Error): unknown;
  };
}

let Xhr2: Xhr2Class | undefined;
let Recording: (new () => NodeXhr) | undefined;

/** Installs `globalThis.XMLHttpRequest` (xhr2) once; leaves an existing one alone. */
export function installXhr(): void {
  Xhr2 ??= require('xhr2') as Xhr2Class;
  const g = globalThis as { XMLHttpRequest?: unknown };
  if (typeof g.XMLHttpRequest === 'undefined') g.XMLHttpRequest = Xhr2;
}

/** A new xhr2 request that records its network error and timeout. */
export function createXhr(): NodeXhr {
  installXhr();
  if (!Recording) {
    const Base = Xhr2 as Xhr2Class;
    class RecordingXhr extends Base {
      nodeError: Error | undefined;
      timedOut = false;
      constructor() {
        super();
        (this as unknown as NodeXhr).addEventListener('timeout', () => {
          this.timedOut = true;
        });
      }
      override _onHttpRequestError(request: unknown, error: Error): unknown {
        this.nodeError = error;
        return super._onHttpRequestError?.(request, error);
      }
    }
    Recording = RecordingXhr as unknown as new () => NodeXhr;
  }
  return new Recording();
}
