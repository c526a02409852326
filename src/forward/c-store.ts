import * as fs from 'node:fs';
import type { Socket } from 'node:net';
import { association as dimseAssociation, Client, constants, Dataset, log as dimseLog, requests, responses } from 'dcmjs-dimse';
import type { DestinationConfig } from '../config/schema';
import { BufferSource } from '../dicom/byte-source';
import { findElement, stringValue } from '../dicom/dataset';
import { DicomParseError } from '../dicom/errors';
import { readInstance } from '../dicom/part10';
import { parseElements } from '../dicom/parser';
import { T } from '../dicom/tags';
import { EXPLICIT_LE, TS } from '../dicom/transfer-syntax';
import { Destination, OutgoingInstance, SendResults } from './destination';
import { fileOf, outgoingBytesSync, outgoingName } from './outgoing';
import { PermanentError, TransientError, hex4 } from './errors';
import { LittleEndianTarget, NATIVE_SYNTAXES, convertNativeDataset } from './native-syntax';

export type CStoreConfig = Extract<DestinationConfig, { type: 'c-store' }>;

type Association = InstanceType<typeof dimseAssociation.Association>;
type CStoreRequest = InstanceType<typeof requests.CStoreRequest>;
type Response = InstanceType<typeof responses.Response>;

const { PresentationContextResult, RejectResult, Status } = constants;

/**
 * C-STORE SCU destination over dcmjs-dimse's Client, sending the EXACT bytes of each file.
 *
 * dcmjs-dimse's Client would naturalize/denaturalize every dataset (private tags dropped, DS
 * values reformatted) and re-fragment encapsulated pixel data. Here each request carries a
 * `RawDataset`: a dcmjs-dimse Dataset whose `getDenaturalizedDataset()` returns the file's
 * dataset bytes (everything after the File Meta group) exactly as stored, in the file's
 * transfer syntax; its elements only hold SOPClassUID/SOPInstanceUID for the command set.
 * The bytes are read when dcmjs-dimse sends the request (one instance in memory at a time).
 *
 * Presentation contexts, per SOP class of the batch: the instance's own transfer syntax in a
 * context of its own, plus dcmjs-dimse's fixed context {implicit VR LE, explicit VR LE}
 * (the Client always proposes it; it cannot be removed). Which one is used is decided here,
 * when the association is accepted, never by dcmjs-dimse (which would transcode, through
 * dcmjs, with the same losses):
 *   1. a context accepted with the file's own transfer syntax: the exact bytes;
 *   2. native files only (implicit/explicit VR LE, explicit VR BE, deflated): a context
 *      accepted with explicit (preferred) or implicit VR LE: the dataset re-encoded at byte
 *      level (./native-syntax.ts: values copied, headers rewritten, BE swapped);
 *   3. otherwise PermanentError NO_PRESENTATION_CONTEXT (SOP class or transfer syntax refused).
 *
 * Statuses: 0x0000 and 0xBxxx (warnings) success; 0xA7xx TransientError; any other
 * PermanentError `DIMSE_xxxx`. Association rejected: transient -> TransientError, permanent ->
 * PermanentError (every instance). Connection refused / reset / timeouts, and an association
 * lost before a response -> TransientError. One association per send() (more only when the
 * batch needs more than 128 presentation contexts).
 */
export class CStoreDestination implements Destination {
  constructor(
    readonly name: string,
    private readonly cfg: CStoreConfig,
  ) {
    quietDimseLog();
  }

  async send(instances: OutgoingInstance[]): Promise<SendResults> {
    const results: SendResults = new Map();
    const ready: Prepared[] = [];
    for (const inst of instances) {
      try {
        ready.push(await prepare(inst));
      } catch (err) {
        results.set(inst.sopInstanceUid, err as Error);
      }
    }
    let stored = false;
    for (const group of byContextLimit(ready)) {
      let r: SendResults;
      try {
        r = await this.associate(group);
      } catch (err) {
        if (!(err instanceof TransientError)) throw err;
        // Whole association failed transiently: this group and the ones after it.
        for (const p of ready.slice(ready.indexOf(group[0]))) results.set(p.inst.sopInstanceUid, err);
        if (!stored && [...results.values()].every((e) => e instanceof TransientError)) throw err;
        return results;
      }
      for (const [k, v] of r) {
        results.set(k, v);
        if (v === null) stored = true;
      }
    }
    return results;
  }

  /** One association: sends the group, resolves with a result per instance. */
  private associate(group: Prepared[]): Promise<SendResults> {
    const what = `${this.name}: C-STORE to ${this.cfg.aeTitle}@${this.cfg.host}:${this.cfg.port}`;
    return new Promise<SendResults>((resolve, reject) => {
      const client = new Client();
      const events = client as unknown as Emitter;
      const results: SendResults = new Map();
      const byRequest = new Map<CStoreRequest, Prepared>();
      let accepted = false;
      let finished = false;
      let failure: Error | undefined;

      /** The instance whose bytes dcmjs-dimse is sending or has sent without a response yet. */
      let inFlight: Prepared | undefined;
      const dataset = (p: Prepared, target?: LittleEndianTarget): RawDataset =>
        new RawDataset(() => {
          inFlight = p;
          try {
            return target ? p.loadConverted(target) : p.load();
          } catch (err) {
            // dcmjs-dimse has already sent the command: the association is lost after this.
            const code = err instanceof DicomParseError ? err.code : `FS_${(err as NodeJS.ErrnoException).code ?? 'ERROR'}`;
            results.set(p.inst.sopInstanceUid, new PermanentError(code, `${what}: cannot read ${outgoingName(p.inst)}: ${(err as Error).message}`, { cause: err }));
            throw err;
          }
        }, p.inst.sopClassUid, p.inst.sopInstanceUid, target ?? p.transferSyntaxUid);

      for (const p of group) {
        const req = new requests.CStoreRequest(dataset(p));
        byRequest.set(req, p);
        client.addRequest(req);
        (req as unknown as Emitter).on('response', (response: Response) => {
          if (inFlight === p) inFlight = undefined;
          results.set(p.inst.sopInstanceUid, statusError(response.getStatus(), response.getErrorComment?.(), `${what}: ${p.inst.sopInstanceUid}`));
        });
      }
      // A context with exactly the file's syntax for implicit/explicit VR LE files (dcmjs-dimse
      // proposes those two only together; for any other syntax it adds such a context itself).
      const own = new Set<string>();
      for (const p of group) {
        const key = `${p.inst.sopClassUid}\\${p.transferSyntaxUid}`;
        if ((p.transferSyntaxUid === TS.ImplicitLittle || p.transferSyntaxUid === TS.ExplicitLittle) && !own.has(key)) {
          own.add(key);
          client.addAdditionalPresentationContext(new dimseAssociation.PresentationContext(0, p.inst.sopClassUid, p.transferSyntaxUid), true);
        }
      }

      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(watchdog);
        destroySocket(client);
        if (!accepted && failure instanceof PermanentError) {
          for (const p of group) results.set(p.inst.sopInstanceUid, failure);
          return resolve(results);
        }
        if (!accepted) return reject(failure instanceof TransientError ? failure : new TransientError('ASSOCIATION_FAILED', `${what}: ${failure?.message ?? 'closed before the association was accepted'}`));
        const lost = failure instanceof TransientError ? failure : new TransientError('ASSOCIATION_LOST', `${what}: association ended before a response${failure ? ` (${failure.message})` : ''}`);
        for (const p of group) if (!results.has(p.inst.sopInstanceUid)) results.set(p.inst.sopInstanceUid, lost);
        if (![...results.values()].some((e) => !(e instanceof TransientError))) return reject(lost);
        resolve(results);
      };

      events.on('associationAccepted', (assoc: Association) => {
        accepted = true;
        // Runs before dcmjs-dimse sends the requests (it emits, then sends this.requests).
        const keep: CStoreRequest[] = [];
        for (const [req, p] of byRequest) {
          const choice = chooseContext(assoc, p);
          if (choice instanceof PermanentError) {
            results.set(p.inst.sopInstanceUid, choice);
          } else {
            if (choice !== p.transferSyntaxUid) req.setDataset(dataset(p, choice as LittleEndianTarget));
            keep.push(req);
          }
        }
        client.clearRequests();
        for (const req of keep) client.addRequest(req);
      });
      events.on('associationRejected', (r: { result: number; source: number; reason: number }) => {
        const text = `${what}: association rejected (result ${r.result}, source ${r.source}, reason ${r.reason})`;
        failure = r.result === RejectResult.Transient ? new TransientError('ASSOCIATION_REJECTED_TRANSIENT', text) : new PermanentError('ASSOCIATION_REJECTED', text);
        setImmediate(finish);
      });
      events.on('networkError', (err: Error) => {
        failure ??= socketError(err, what);
        // 'closed' normally follows; do not wait for it forever.
        setTimeout(finish, 2000).unref();
      });
      events.on('closed', () => finish());

      const timeoutMs = Math.max(1000, this.cfg.timeoutMs);
      // Every step has dcmjs-dimse's own timeouts; this is the last resort for a hung peer.
      const watchdog = setTimeout(() => {
        failure ??= new TransientError('ETIMEDOUT', `${what}: no progress within the timeout`);
        try {
          client.abort();
        } catch {
          /* no network yet */
        }
        finish();
      }, timeoutMs * (group.length + 2));

      try {
        client.send(this.cfg.host, this.cfg.port, this.cfg.callingAeTitle, this.cfg.aeTitle, {
          connectTimeout: timeoutMs,
          associationTimeout: timeoutMs,
          pduTimeout: timeoutMs,
          datasetWriteOptions: { fragmentMultiframe: false },
        });
        const network = (client as unknown as ClientInternals).network;
        // dcmjs-dimse never disables Nagle: small PDUs (commands, responses) would wait for
        // delayed ACKs.
        network?.socket?.setNoDelay?.(true);
        // The Client does not forward an A-ABORT from the peer (its Network emits 'abort'), and
        // DCMTK then waits for us to close the connection: listen on the Network directly.
        network?.on?.('abort', (a: { source: number; reason: number }) => {
          const text = `${what}: association aborted by the peer (source ${a.source}, reason ${a.reason})`;
          // The instance being sent is the likely cause (DCMTK aborts on data it cannot
          // decode): quarantine it rather than retry the whole batch behind it forever.
          if (inFlight && !results.has(inFlight.inst.sopInstanceUid)) {
            results.set(inFlight.inst.sopInstanceUid, new PermanentError('ASSOCIATION_ABORTED', `${text} while receiving ${inFlight.inst.sopInstanceUid}`));
          }
          failure ??= new TransientError('ASSOCIATION_ABORTED', text);
          finish();
        });
      } catch (err) {
        failure = new TransientError('ASSOCIATION_FAILED', `${what}: ${(err as Error).message}`, { cause: err });
        finish();
      }
    });
  }

  /** C-ECHO: an association and a Success status. */
  probe(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const client = new Client();
      const events = client as unknown as Emitter;
      const req = new requests.CEchoRequest();
      let ok = false;
      let done = false;
      const end = (): void => {
        if (done) return;
        done = true;
        clearTimeout(t);
        destroySocket(client);
        resolve(ok);
      };
      (req as unknown as Emitter).on('response', (r: Response) => {
        ok = r.getStatus() === Status.Success;
      });
      client.addRequest(req);
      events.on('associationRejected', end);
      events.on('networkError', () => setTimeout(end, 500).unref());
      events.on('closed', end);
      const timeoutMs = Math.max(1000, this.cfg.timeoutMs);
      const t = setTimeout(end, timeoutMs * 2);
      try {
        client.send(this.cfg.host, this.cfg.port, this.cfg.callingAeTitle, this.cfg.aeTitle, {
          connectTimeout: timeoutMs, associationTimeout: timeoutMs, pduTimeout: timeoutMs,
        });
      } catch {
        end();
      }
    });
  }

  async close(): Promise<void> {
    /* one association per send(); nothing stays open */
  }
}

// ---------------------------------------------------------------- instances

interface Prepared {
  inst: OutgoingInstance;
  transferSyntaxUid: string;
  /** The dataset bytes to send as they are in the file (read at send time). */
  load(): Buffer;
  /** The dataset re-encoded in a little endian syntax (native files only). */
  loadConverted(target: LittleEndianTarget): Buffer;
}

/**
 * A dcmjs-dimse Dataset that is only bytes: what goes on the wire is `load()`, unchanged.
 * dcmjs-dimse calls getDenaturalizedDataset() when it sends the request, and getElement() for
 * the command set's SOP Class / SOP Instance UIDs.
 */
export class RawDataset extends Dataset {
  constructor(
    private readonly load: () => Buffer,
    sopClassUid: string,
    sopInstanceUid: string,
    transferSyntaxUid: string,
  ) {
    super({ SOPClassUID: sopClassUid, SOPInstanceUID: sopInstanceUid }, transferSyntaxUid);
  }

  override getDenaturalizedDataset(): Buffer {
    return this.load();
  }

  override toString(): string {
    return `RawDataset ${this.getElement('SOPInstanceUID')} [${this.getTransferSyntaxUid()}]`;
  }
}

/** Where a Part 10 file's dataset starts, and what its meta group says. */
export interface Part10Head {
  datasetOffset: number;
  transferSyntaxUid: string;
  sopClassUid: string;
  sopInstanceUid: string;
}

/** Reads the preamble and File Meta group of a Part 10 file (not the dataset). */
export async function readPart10Head(file: string): Promise<Part10Head> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    for (let want = 64 * 1024; ; want *= 4) {
      const len = Math.min(size, want);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, 0);
      const head = headFrom(buf, size, file);
      if (head) return head;
    }
  } finally {
    await fh.close();
  }
}

/** The preamble and File Meta group of Part 10 bytes in memory. */
export const part10HeadOf = (bytes: Buffer, name: string): Part10Head => headFrom(bytes, bytes.length, name)!;

/** The head from the first `buf.length` bytes of `size`; null when it needs more of them. */
function headFrom(buf: Buffer, size: number, name: string): Part10Head | null {
  const len = buf.length;
  if (len < 132 || buf.toString('latin1', 128, 132) !== 'DICM') {
    throw new DicomParseError('NOT_DICOM', `${name} is not a DICOM Part 10 file (no preamble and "DICM")`);
  }
  try {
    const src = new BufferSource(buf);
    const r = parseElements(src, 132, len, EXPLICIT_LE, 0, { onlyGroup: 0x0002 });
    if (r.end >= len && len < size) return null;
    const get = (tag: number): string => {
      const el = findElement(r.elements, tag);
      return el ? stringValue(src, el) : '';
    };
    const ts = get(T.TransferSyntaxUID);
    if (!ts) throw new DicomParseError('MISSING_ATTRIBUTE', `${name}: no Transfer Syntax UID in the meta group`);
    return { datasetOffset: r.end, transferSyntaxUid: ts, sopClassUid: get(T.MediaStorageSOPClassUID), sopInstanceUid: get(T.MediaStorageSOPInstanceUID) };
  } catch (err) {
    if (err instanceof DicomParseError && err.code === 'TRUNCATED' && len < size) return null;
    throw err;
  }
}

async function prepare(inst: OutgoingInstance): Promise<Prepared> {
  let head: Part10Head;
  try {
    head = inst.bytes ? part10HeadOf(inst.bytes, outgoingName(inst)) : await readPart10Head(fileOf(inst));
  } catch (err) {
    const code = err instanceof DicomParseError ? err.code : `FS_${(err as NodeJS.ErrnoException).code ?? 'ERROR'}`;
    throw new PermanentError(code, `cannot send ${outgoingName(inst)} (${inst.sopInstanceUid}): ${(err as Error).message}`, { cause: err });
  }
  if (head.sopInstanceUid && head.sopInstanceUid !== inst.sopInstanceUid) {
    throw new PermanentError('METADATA_MISMATCH', `${outgoingName(inst)}: its meta group says SOP instance ${head.sopInstanceUid}, the record ${inst.sopInstanceUid}`);
  }
  const ts = head.transferSyntaxUid;
  return {
    inst,
    transferSyntaxUid: ts,
    load: () => {
      const data = outgoingBytesSync(inst).subarray(head.datasetOffset);
      // A deflated stream must be padded to even length (PS3.5 A.5); some writers forget, and
      // DCMTK then aborts the association ("Odd Fragment Length").
      return ts === TS.DeflatedExplicitLittle && data.length % 2 ? Buffer.concat([data, Buffer.alloc(1)]) : data;
    },
    loadConverted: (target) => convertNativeDataset(readInstance(new BufferSource(outgoingBytesSync(inst))), target),
  };
}

/** The transfer syntax to send `p` in on this association, or why it cannot be sent. */
function chooseContext(assoc: Association, p: Prepared): string | PermanentError {
  const forClass = assoc.getPresentationContexts().map((c) => assoc.getPresentationContext(c.id)).filter((c) => c.getAbstractSyntaxUid() === p.inst.sopClassUid);
  const acceptedTs = forClass.filter((c) => c.getResult() === PresentationContextResult.Accept).map((c) => c.getAcceptedTransferSyntaxUid() ?? '');
  if (acceptedTs.includes(p.transferSyntaxUid)) return p.transferSyntaxUid;
  if (NATIVE_SYNTAXES.has(p.transferSyntaxUid)) {
    for (const t of [TS.ExplicitLittle, TS.ImplicitLittle] as const) if (acceptedTs.includes(t)) return t;
  }
  const results = forClass.map((c) => c.getResultDescription()).join(', ');
  const why = !acceptedTs.length ? `SOP class ${p.inst.sopClassUid} not accepted (${results || 'not negotiated'})` : `transfer syntax ${p.transferSyntaxUid} not accepted for ${p.inst.sopClassUid} (accepted: ${acceptedTs.join(', ')})`;
  return new PermanentError('NO_PRESENTATION_CONTEXT', `${p.inst.sopInstanceUid}: ${why}`);
}

/** An association carries at most 128 presentation contexts (odd IDs 1-255, PS3.8 9.3.2.2). */
export const MAX_PRESENTATION_CONTEXTS = 128;

/** Splits a batch so that no association needs more than 128 presentation contexts. */
export function byContextLimit<P extends { inst: Pick<OutgoingInstance, 'sopClassUid'>; transferSyntaxUid: string }>(ready: P[]): P[][] {
  const groups: P[][] = [];
  let cur: P[] = [];
  let keys = new Set<string>();
  for (const p of ready) {
    // One {implicit, explicit} context per SOP class, one more per (SOP class, own syntax).
    const add = [`${p.inst.sopClassUid}`, `${p.inst.sopClassUid}\\${p.transferSyntaxUid}`].filter((k) => !keys.has(k));
    if (cur.length && keys.size + add.length > MAX_PRESENTATION_CONTEXTS) {
      groups.push(cur);
      cur = [];
      keys = new Set();
    }
    cur.push(p);
    for (const k of [`${p.inst.sopClassUid}`, `${p.inst.sopClassUid}\\${p.transferSyntaxUid}`]) keys.add(k);
  }
  if (cur.length) groups.push(cur);
  return groups;
}

// ---------------------------------------------------------------- statuses and errors

/** Status classes of PS3.7 Annex C: the bits of a status that name its kind. */
export const STATUS_CLASS = {
  warning: { mask: 0xf000, value: 0xb000 },
  outOfResources: { mask: 0xff00, value: 0xa700 },
  dataSetMismatch: { mask: 0xff00, value: 0xa900 },
  cannotUnderstand: { mask: 0xf000, value: 0xc000 },
} as const;
export const isClass = (status: number, c: { mask: number; value: number }): boolean => (status & c.mask) === c.value;

/** C-STORE response status -> null (stored: Success or a Warning) or the error. */
export function statusError(status: number, comment: string | undefined, what: string): Error | null {
  if (status === Status.Success || isClass(status, STATUS_CLASS.warning)) return null;
  const code = `DIMSE_${hex4(status)}`;
  const name = statusName(status);
  const text = `${what}: status 0x${hex4(status)}${name ? ` ${name}` : ''}${comment ? `: ${comment}` : ''}`;
  return isClass(status, STATUS_CLASS.outOfResources) ? new TransientError(code, text) : new PermanentError(code, text);
}

function statusName(status: number): string {
  if (isClass(status, STATUS_CLASS.outOfResources)) return '(Refused: out of resources)';
  if (isClass(status, STATUS_CLASS.dataSetMismatch)) return '(Error: data set does not match SOP class)';
  if (isClass(status, STATUS_CLASS.cannotUnderstand)) return '(Error: cannot understand)';
  const named = Object.entries(Status).find(([, v]) => v === status);
  return named ? `(${named[0]})` : '';
}

/** dcmjs-dimse network errors are `Error('<ae> -> Connection error: <node message>')`. */
function socketError(err: Error, what: string): TransientError {
  const m = /\b(E[A-Z]{3,})\b/.exec(err.message);
  const code = m ? m[1] : /timeout/i.test(err.message) ? 'ETIMEDOUT' : 'NETWORK_ERROR';
  return new TransientError(code, `${what}: ${err.message}`, { cause: err });
}

// ---------------------------------------------------------------- dcmjs-dimse plumbing

interface Emitter {
  on(event: string, listener: (...args: never[]) => void): void;
}

/** dcmjs-dimse fields its d.ts does not declare: the Client's Network and its socket. */
interface ClientInternals {
  network?: { socket?: Socket; on?(event: string, listener: (arg: { source: number; reason: number }) => void): void };
}

function destroySocket(client: Client): void {
  const socket = (client as unknown as ClientInternals).network?.socket;
  if (socket && !socket.destroyed) socket.destroy();
}

/** dcmjs-dimse logs every PDU at its default level (trace); keep warnings and errors only. */
export function quietDimseLog(): void {
  if (dimseLog.getLevel() < dimseLog.levels.WARN) dimseLog.setLevel(dimseLog.levels.WARN);
}
