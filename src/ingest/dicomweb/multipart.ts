/**
 * An incremental multipart/related parser (RFC 2046 5.1, RFC 2387): bytes are pushed as they
 * arrive and come out as events; a part's body is handed on in pieces of the pushed chunks, so
 * memory stays at one chunk plus a delimiter's length of carry whatever the body size.
 */

/** What the parser found, in order. `data` buffers are views of pushed bytes: use them before the next push. */
export type MultipartEvent =
  | { kind: 'part'; headers: Map<string, string> }
  | { kind: 'data'; data: Buffer }
  | { kind: 'end' };

export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

/** A media type: lower-cased `type/subtype` and its parameters (names lower-cased, values unquoted). */
export interface MediaType {
  type: string;
  params: Map<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses a Content-Type value (RFC 9110 8.3.1); null when it is not one. */
export function parseMediaType(value: string | undefined): MediaType | null {
  if (!value) return null;
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const slash = type.indexOf('/');
  if (slash <= 0 || !TOKEN.test(type.slice(0, slash)) || !TOKEN.test(type.slice(slash + 1))) return null;
  const params = new Map<string, string>();
  let rest = semi < 0 ? '' : value.slice(semi + 1);
  for (;;) {
    rest = rest.replace(/^[\s;]+/, '');
    if (!rest) break;
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*/.exec(rest);
    if (!m) return null;
    rest = rest.slice(m[0].length);
    let v: string;
    if (rest.startsWith('"')) {
      let i = 1;
      v = '';
      for (; i < rest.length && rest[i] !== '"'; i++) v += rest[i] === '\\' && i + 1 < rest.length ? rest[++i] : rest[i];
      if (i >= rest.length) return null; // unterminated quoted string
      rest = rest.slice(i + 1);
    } else {
      const t = /^[^;\s]*/.exec(rest)![0];
      v = t;
      rest = rest.slice(t.length);
    }
    const name = m[1].toLowerCase();
    if (!params.has(name)) params.set(name, v);
  }
  return { type, params };
}

/** RFC 2046: 1 to 70 characters from this set, not ending with a space. */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

export function isValidBoundary(b: string): boolean {
  return BOUNDARY.test(b);
}

const CRLF = Buffer.from('\r\n', 'latin1');
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/** Junk before the first delimiter we are willing to skip, and the largest part header block. */
export const MAX_PREAMBLE = 64 << 10;
export const MAX_PART_HEADERS = 16 << 10;
/** Transport padding allowed after a delimiter (RFC 2046 allows linear white space there). */
const MAX_PADDING = 1024;

type State = 'preamble' | 'delimiter' | 'headers' | 'body' | 'done';

export class MultipartParser {
  /** "\r\n--boundary": every delimiter, the first one included (the body starts after a virtual CRLF). */
  private readonly delimiter: Buffer;
  private state: State = 'preamble';
  private carry: Buffer = CRLF;
  private skipped = 0;
  private partsSeen = 0;
  private failure: MultipartError | null = null;

  constructor(boundary: string) {
    if (!isValidBoundary(boundary)) throw new MultipartError(`invalid multipart boundary ${JSON.stringify(boundary.slice(0, 80))}`);
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  }

  /** Parts whose headers were read. */
  get parts(): number {
    return this.partsSeen;
  }

  /** The close delimiter was read (anything after it is the epilogue, ignored). */
  get done(): boolean {
    return this.state === 'done';
  }

  /** Inside a part's body (used to tell a truncated part from a truncated preamble or header). */
  get inBody(): boolean {
    return this.state === 'body';
  }

  /** A delimiter was found (the body is multipart at all). */
  get started(): boolean {
    return this.state !== 'preamble';
  }

  /** The structure broke: set by push(), which then ignores everything after. */
  get error(): MultipartError | null {
    return this.failure;
  }

  /**
   * Feeds bytes; returns the events they complete. On malformed structure it returns the events
   * found before the fault and sets `error` (the caller handles those events, then stops).
   */
  push(chunk: Buffer): MultipartEvent[] {
    const out: MultipartEvent[] = [];
    if (this.state === 'done' || this.failure) return out;
    let buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = EMPTY;
    try {
      for (;;) {
        const next = this.step(buf, out);
        if (next === null) return out;
        buf = next;
      }
    } catch (err) {
      if (!(err instanceof MultipartError)) throw err;
      this.failure = err;
      return out;
    }
  }

  /**
   * One state transition over `buf`; returns the unconsumed rest to go on with, or null once the
   * parser needs more bytes (the rest is then kept in `carry`).
   */
  private step(buf: Buffer, out: MultipartEvent[]): Buffer | null {
    const d = this.delimiter;
    switch (this.state) {
      case 'preamble': {
        const at = buf.indexOf(d);
        if (at < 0) {
          const keep = Math.min(buf.length, d.length - 1);
          this.skipped += buf.length - keep;
          if (this.skipped > MAX_PREAMBLE) throw new MultipartError(`no multipart delimiter in the first ${MAX_PREAMBLE} bytes (wrong boundary?)`);
          this.carry = Buffer.from(buf.subarray(buf.length - keep));
          return null;
        }
        this.state = 'delimiter';
        return buf.subarray(at + d.length);
      }
      case 'delimiter': {
        if (buf.length < 2) return this.wait(buf);
        if (buf[0] === 0x2d && buf[1] === 0x2d) {
          this.state = 'done';
          return null;
        }
        const eol = buf.indexOf(CRLF);
        if (eol < 0) {
          // Padding so far, possibly followed by the CR of the CRLF still to come.
          const end = buf[buf.length - 1] === 0x0d ? buf.length - 1 : buf.length;
          if (buf.length > MAX_PADDING || !onlyPadding(buf, end)) throw new MultipartError('garbage after a multipart delimiter');
          return this.wait(buf);
        }
        if (!onlyPadding(buf, eol)) throw new MultipartError('garbage after a multipart delimiter');
        this.state = 'headers';
        return buf.subarray(eol + 2);
      }
      case 'headers': {
        let headers: Map<string, string>;
        let rest: Buffer;
        if (buf.length < 2) return this.wait(buf);
        if (buf[0] === 0x0d && buf[1] === 0x0a) {
          headers = new Map();
          rest = buf.subarray(2);
        } else {
          const end = buf.indexOf(CRLFCRLF);
          if (end < 0) {
            if (buf.length > MAX_PART_HEADERS) throw new MultipartError(`part headers longer than ${MAX_PART_HEADERS} bytes`);
            return this.wait(buf);
          }
          headers = parseHeaderBlock(buf.toString('latin1', 0, end));
          rest = buf.subarray(end + 4);
        }
        this.partsSeen++;
        out.push({ kind: 'part', headers });
        this.state = 'body';
        return rest;
      }
      case 'body': {
        const at = buf.indexOf(d);
        if (at < 0) {
          // The last delimiter-length-minus-one bytes may be the start of a delimiter.
          const keep = Math.min(buf.length, d.length - 1);
          if (buf.length > keep) out.push({ kind: 'data', data: buf.subarray(0, buf.length - keep) });
          this.carry = Buffer.from(buf.subarray(buf.length - keep));
          return null;
        }
        if (at > 0) out.push({ kind: 'data', data: buf.subarray(0, at) });
        out.push({ kind: 'end' });
        this.state = 'delimiter';
        return buf.subarray(at + d.length);
      }
      case 'done':
        return null;
    }
  }

  private wait(buf: Buffer): null {
    this.carry = Buffer.from(buf);
    return null;
  }
}

const EMPTY = Buffer.alloc(0);

function onlyPadding(buf: Buffer, end: number): boolean {
  for (let i = 0; i < end; i++) if (buf[i] !== 0x20 && buf[i] !== 0x09) return false;
  return true;
}

/** Header lines of one part; names lower-cased, folded lines joined, the first of duplicates kept. */
function parseHeaderBlock(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  const lines = text.split('\r\n');
  const unfolded: string[] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && unfolded.length) unfolded[unfolded.length - 1] += ' ' + line.trim();
    else unfolded.push(line);
  }
  for (const line of unfolded) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new MultipartError(`malformed part header line ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!TOKEN.test(name)) throw new MultipartError(`malformed part header name ${JSON.stringify(name.slice(0, 80))}`);
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}
