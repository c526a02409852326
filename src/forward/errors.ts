/**
 * The two ways a destination can fail. A destination never returns "failed" without saying
 * which one it is, so the pipeline can decide without looking at messages:
 *
 * - `TransientError`: the destination could not take the instance *now* (connection refused
 *   or reset, timeout, HTTP 5xx / 408 / 429, DIMSE 0xA7xx "out of resources", association
 *   aborted). Retry with backoff; the same bytes may succeed later.
 * - `PermanentError`: the destination looked at the instance and refused it (HTTP 4xx other
 *   than 408/429, DIMSE 0xA9xx / 0xCxxx / other failures, a presentation context or SOP class
 *   it does not accept, a STOW-RS FailedSOPSequence entry). Retrying the same bytes cannot
 *   help: quarantine with the code and reason.
 *
 * `code` is a short stable string (e.g. `ECONNREFUSED`, `HTTP_503`, `DIMSE_A700`,
 * `STOW_FAILURE_A900`, `NO_PRESENTATION_CONTEXT`) for audit records, metrics and quarantine
 * reason files; the message says the same for people.
 */

export abstract class ForwardError extends Error {
  abstract readonly transient: boolean;
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class TransientError extends ForwardError {
  readonly transient = true;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'TransientError';
  }
}

export class PermanentError extends ForwardError {
  readonly transient = false;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'PermanentError';
  }
}

export const isTransient = (err: unknown): err is TransientError => err instanceof TransientError;
export const isPermanent = (err: unknown): err is PermanentError => err instanceof PermanentError;

/** Node socket error codes that mean "the peer is not reachable right now". */
const TRANSIENT_SOCKET_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENETDOWN', 'EHOSTDOWN', 'EAI_AGAIN', 'ENOTFOUND', 'ESOCKETTIMEDOUT', 'UND_ERR_SOCKET',
]);

/** A TransientError from a Node socket/DNS error (any other error code is transient too: the
 * network failed before the peer judged the instance). */
export function networkError(err: unknown, what: string): TransientError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  const c = code && TRANSIENT_SOCKET_CODES.has(code) ? code : code ?? 'NETWORK_ERROR';
  return new TransientError(c, `${what}: ${msg}`, { cause: err });
}

/** HTTP status -> error class: 408, 429 and 5xx are transient, other 4xx permanent. */
export function httpStatusError(status: number, what: string, detail = ''): TransientError | PermanentError {
  const message = `${what}: HTTP ${status}${detail ? ` ${detail}` : ''}`;
  if (status === 0) return new TransientError('ECONNREFUSED', `${what}: connection refused or no response`);
  if (status === 408 || status === 429 || status >= 500) return new TransientError(`HTTP_${status}`, message);
  return new PermanentError(`HTTP_${status}`, message);
}

/** `0xA700` -> `A700` (codes never carry raw decimal numbers). */
export const hex4 = (n: number): string => (n & 0xffff).toString(16).toUpperCase().padStart(4, '0');
