/**
 * Helpers for the DIMSE ingest tests: a small file-backed IngestSink, an async runner for the
 * DCMTK tools (the server runs in this process, so a synchronous spawn would deadlock), and
 * a TCP probe.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Dataset, requests, association as assoc, Client, constants } from 'dcmjs-dimse';
import { DicomParseError } from '../../src/dicom/errors';
import { openInstance } from '../../src/io/instance-file';
import type { CommitResult, IngestSink, ReceiveMeta, SpoolWriter } from '../../src/ingest/dimse/types';

export interface SinkEntry {
  id: string;
  file: string;
  meta: ReceiveMeta;
  prefix: Buffer;
}

/**
 * Writes each instance to `<dir>/incoming/<id>.part`; commit() fsyncs, validates the file with
 * openInstance, then renames it to `<dir>/stored/<id>.dcm`, or moves it to
 * `<dir>/quarantine/<id>.dcm` and answers 'quarantined' when it does not parse.
 */
export class DirSink implements IngestSink {
  readonly stored: SinkEntry[] = [];
  readonly quarantined: Array<SinkEntry & { code: string; reason: string }> = [];
  room = true;
  /** When set, every commit() waits for it first. */
  gate: Promise<void> | undefined;
  /** The next this-many commit() calls reject (a spool failure: ENOSPC, EIO...). */
  failCommits = 0;
  opened = 0;
  aborted = 0;
  commitsStarted = 0;

  constructor(readonly dir: string) {
    for (const d of ['incoming', 'stored', 'quarantine']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  }

  hasRoom(): boolean {
    return this.room;
  }

  openWriter(meta: ReceiveMeta, prefix: Buffer): SpoolWriter {
    this.opened++;
    const id = randomUUID();
    const part = path.join(this.dir, 'incoming', `${id}.part`);
    let fd: number | null = fs.openSync(part, 'wx');
    let bytes = 0;
    const put = (b: Buffer): void => {
      let off = 0;
      while (off < b.length) off += fs.writeSync(fd!, b, off, b.length - off);
      bytes += b.length;
    };
    put(prefix);
    const close = (): void => {
      if (fd !== null) fs.closeSync(fd);
      fd = null;
    };
    return {
      get bytes() {
        return bytes;
      },
      write: (chunk) => put(chunk),
      commit: async (): Promise<CommitResult> => {
        this.commitsStarted++;
        if (this.gate) await this.gate;
        if (this.failCommits > 0) {
          this.failCommits--;
          close();
          fs.rmSync(part, { force: true });
          throw new Error('EIO: simulated spool failure');
        }
        fs.fsyncSync(fd!);
        close();
        try {
          openInstance(part).close();
        } catch (err) {
          if (!(err instanceof DicomParseError)) throw err;
          const file = path.join(this.dir, 'quarantine', `${id}.dcm`);
          fs.renameSync(part, file);
          this.quarantined.push({ id, file, meta, prefix, code: err.code, reason: err.message });
          return { status: 'quarantined', entry: { id }, code: err.code, reason: err.message };
        }
        const file = path.join(this.dir, 'stored', `${id}.dcm`);
        fs.renameSync(part, file);
        this.stored.push({ id, file, meta, prefix });
        return { status: 'stored', entry: { id } };
      },
      abort: async () => {
        if (fd === null) return;
        close();
        fs.rmSync(part, { force: true });
        this.aborted++;
      },
    };
  }

  /** Files left in incoming/ (aborted or never finished writers must leave none). */
  leftovers(): string[] {
    return fs.readdirSync(path.join(this.dir, 'incoming'));
  }
}

export interface ToolResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a DCMTK tool asynchronously with TCP_NODELAY=1, killed after `timeoutMs`. */
export function runTool(cmd: string, args: string[], timeoutMs = 60_000): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, TCP_NODELAY: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('latin1').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('latin1').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
}

/** Resolves with the error code of a TCP connect ('connected' when it succeeded). */
export function tryConnect(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (r: string): void => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(timeoutMs, () => done('timeout'));
    s.once('connect', () => done('connected'));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

/** Polls `cond` until true or the deadline passes. */
export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Offset of the data set in a Part 10 file: after preamble, "DICM" and the group-length-led meta group. */
export function datasetOffset(file: Buffer): number {
  if (file.toString('latin1', 128, 132) !== 'DICM') throw new Error('no DICM marker');
  if (file.readUInt16LE(132) !== 0x0002 || file.readUInt16LE(134) !== 0x0000) throw new Error('meta group does not start with its group length');
  return 132 + 12 + file.readUInt32LE(140);
}

export interface MetaInfo {
  sopClass: string;
  sopInstance: string;
  ts: string;
  /** Offset of the data set (after preamble, DICM and the meta group). */
  datasetStart: number;
}

/** Reads the (explicit VR LE) File Meta group of a Part 10 buffer; independent of src/. */
export function readMeta(file: Buffer): MetaInfo {
  const start = datasetOffset(file);
  const out: MetaInfo = { sopClass: '', sopInstance: '', ts: '', datasetStart: start };
  let pos = 132;
  while (pos < start) {
    const element = file.readUInt16LE(pos + 2);
    const vr = file.toString('latin1', pos + 4, pos + 6);
    const long = ['OB', 'OW', 'OF', 'SQ', 'UT', 'UN', 'UC', 'UR', 'OD', 'OL', 'OV'].includes(vr);
    const len = long ? file.readUInt32LE(pos + 8) : file.readUInt16LE(pos + 6);
    const vstart = pos + (long ? 12 : 8);
    const text = file.toString('latin1', vstart, vstart + len).replace(/[\0 ]+$/, '');
    if (element === 0x0002) out.sopClass = text;
    if (element === 0x0003) out.sopInstance = text;
    if (element === 0x0010) out.ts = text;
    pos = vstart + len;
  }
  return out;
}

/** A dcmjs-dimse Dataset that sends the given bytes as they are (no naturalize/denaturalize). */
export class RawDataset extends Dataset {
  readonly #raw: Buffer;
  constructor(raw: Buffer, sopClass: string, sopInstance: string, ts: string) {
    super({ SOPClassUID: sopClass, SOPInstanceUID: sopInstance }, ts);
    this.#raw = raw;
  }
  override getDenaturalizedDataset(): Buffer {
    return this.#raw;
  }
}

export interface ClientItem {
  /** Data set bytes, sent verbatim. */
  dataset: Buffer;
  sopClass: string;
  sopInstance: string;
  ts: string;
}

export interface ClientResult {
  /** C-STORE response status per item (undefined: no response). */
  statuses: Array<number | undefined>;
  rejected?: { result: number; source: number; reason: number };
  networkErrors: string[];
}

/** Sends the items in one association with dcmjs-dimse's Client; resolves when the connection closes. */
export function clientStore(port: number, callingAE: string, calledAE: string, items: ClientItem[], timeoutMs = 60_000): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    const result: ClientResult = { statuses: items.map(() => undefined), networkErrors: [] };
    const explicitClasses = new Set<string>();
    items.forEach((it, i) => {
      const request = new requests.CStoreRequest(new RawDataset(it.dataset, it.sopClass, it.sopInstance, it.ts));
      request.on('response', (response: { getStatus(): number }) => {
        result.statuses[i] = response.getStatus();
      });
      client.addRequest(request);
      // The Client proposes [implicit, explicit] LE in one context; the server takes implicit (the
      // first), so an explicit LE data set gets a context of its own or it would be transcoded.
      if (it.ts === constants.TransferSyntax.ExplicitVRLittleEndian) explicitClasses.add(it.sopClass);
    });
    for (const c of explicitClasses) {
      client.addAdditionalPresentationContext(new assoc.PresentationContext(0, c, constants.TransferSyntax.ExplicitVRLittleEndian), true);
    }
    const timer = setTimeout(() => reject(new Error('client timed out')), timeoutMs);
    client.on('associationRejected', (r: { result: number; source: number; reason: number }) => {
      result.rejected = r;
    });
    client.on('networkError', (e: Error) => result.networkErrors.push(e.message));
    client.on('closed', () => {
      clearTimeout(timer);
      resolve(result);
    });
    client.send('127.0.0.1', port, callingAE, calledAE);
  });
}

/** Item for a Part 10 buffer: its data set bytes and meta values. */
export function itemOf(file: Buffer): ClientItem {
  const m = readMeta(file);
  return { dataset: file.subarray(m.datasetStart), sopClass: m.sopClass, sopInstance: m.sopInstance, ts: m.ts };
}
