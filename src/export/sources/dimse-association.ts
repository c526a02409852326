import * as net from 'node:net';
import type { Writable } from 'node:stream';
import { association as dimseAssociation, constants, Dataset, requests, responses, Scp } from 'dcmjs-dimse';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../../dicom/meta';
import { isClass, MAX_PRESENTATION_CONTEXTS, quietDimseLog, STATUS_CLASS } from '../../forward/c-store';
import { hex4 } from '../../forward/errors';
import { SourceError } from '../types';

type Association = dimseAssociation.Association;
type PresentationContext = dimseAssociation.PresentationContext;
export type QueryRequest = requests.CFindRequest | requests.CMoveRequest | requests.CGetRequest | requests.CEchoRequest;
export type Response = responses.Response;

const { PresentationContextResult, RejectResult, Status } = constants;

/** Where and as whom to associate. */
export interface DimsePeer {
  host: string;
  port: number;
  callingAeTitle: string;
  calledAeTitle: string;
  /** Connect, negotiation and silence (no PDU) limit, and the C-CANCEL grace period. */
  timeoutMs: number;
}

export interface ContextProposal {
  abstractSyntax: string;
  transferSyntaxes: string[];
  /** We take the SCP role for this SOP class (C-GET storage sub-operations, PS3.7 D.3.3.4). */
  scpRole?: boolean;
}

/** Receives the data sets of the C-STORE sub-operations of a C-GET (the Scp hooks, one instance at a time). */
export interface StoreHandler {
  /** The first PDV of a C-STORE data set arrived: where its bytes go. */
  createStream(pc: PresentationContext, request: requests.CStoreRequest): Writable;
  /** The last PDV was written (the stream is ended): what dcmjs-dimse hands to cStoreRequest. */
  datasetOf(stream: Writable, pc: PresentationContext): Dataset;
  /** The C-STORE request is complete: the status to answer it with. Never rejects. */
  store(request: requests.CStoreRequest): Promise<number>;
  /** The association ended: drop a half-received instance. Never rejects. */
  discard(): Promise<void>;
}

/** The two native syntaxes dcmjs-dimse encodes our (small, naturalized) identifiers in. */
export const NATIVE_SYNTAXES = [constants.TransferSyntax.ExplicitVRLittleEndian, constants.TransferSyntax.ImplicitVRLittleEndian];

/** PS3.7 C.4.1.1.4: 0xFF00 and 0xFF01 are both Pending. */
const isPending = (status: number): boolean => status === 0xff00 || status === 0xff01;

/**
 * A final DIMSE status -> null (Success, or Warning: the counters say what failed) or the
 * error. 0xA7xx (out of resources) and a Cancel we did not ask for are worth retrying; every
 * other failure (0xA801 move destination unknown, 0xA900, 0xCxxx, 0x01xx...) is not. The
 * message names the operation and the code only: never the identifier (PHI) nor the PACS's
 * error comment (which may quote it).
 */
export function statusError(status: number, what: string): SourceError | null {
  if (status === Status.Success || isClass(status, STATUS_CLASS.warning)) return null;
  const text = `${what}: status 0x${hex4(status)}`;
  if (isClass(status, STATUS_CLASS.outOfResources)) return new SourceError(`${text} (refused: out of resources)`, true, status);
  if (status === Status.Cancel) return new SourceError(`${text} (cancelled by the peer)`, true, status);
  if (status === Status.MoveDestinationUnknown) return new SourceError(`${text} (move destination unknown)`, false, status);
  if (isClass(status, STATUS_CLASS.cannotUnderstand)) return new SourceError(`${text} (unable to process)`, false, status);
  return new SourceError(`${text} (failed)`, false, status);
}

/**
 * One association with a PACS, as the requestor: requests run one after the other (no
 * asynchronous operations), then a release.
 *
 * Why an Scp subclass and not dcmjs-dimse's Client: the Client builds its Network inside
 * send(), so there is nowhere to hook the C-STORE sub-operations of a C-GET (the Client would
 * parse and naturalize every data set through dcmjs: private tags dropped, DS rewritten) nor
 * to put SCP/SCU role selection on the contexts we choose (it only offers implicit/explicit
 * VR LE for a fixed list of storage classes). An Scp is that same Network with incoming
 * requests routed to overridable methods, and the Network sends association requests and
 * DIMSE requests as well as it answers them: here it connects, proposes our contexts, and
 * streams each received C-STORE data set to a StoreHandler exactly as it came off the wire.
 *
 * Every failure becomes a SourceError: connection refused/reset/timed out, silence beyond
 * timeoutMs, A-ABORT, an association lost before a final response, or one rejected with
 * result "transient": transient; an association rejected permanently or a SOP class the peer
 * did not accept: permanent.
 */
export class ScuAssociation extends Scp {
  readonly #peer: DimsePeer;
  readonly #what: string;
  readonly #socket: net.Socket;
  readonly #store: StoreHandler | undefined;
  #association: Association | undefined;
  /** Set once the association is unusable: what pending and later calls reject with. */
  #failure: { reason: unknown } | undefined;
  #ending = false;
  readonly #onFailure = new Set<(reason: unknown) => void>();

  private constructor(socket: net.Socket, peer: DimsePeer, what: string, store: StoreHandler | undefined) {
    const t = timeoutOf(peer);
    super(socket, { connectTimeout: t, associationTimeout: t, pduTimeout: t });
    this.#socket = socket;
    this.#peer = peer;
    this.#what = what;
    this.#store = store;
    // Before dcmjs-dimse's own listener, which reports the error as free text.
    socket.prependListener('error', (err: NodeJS.ErrnoException) => this.#fail(transient(`${what}: connection failed (${err.code ?? 'network error'})`)));
    this.on('networkError', (err: Error) => this.#fail(transient(`${what}: ${/timeout/i.test(err.message) ? 'no answer within the timeout' : 'network error'}`)));
    this.on('close', () => this.#fail(transient(`${what}: connection closed before the end`)));
  }

  /**
   * Connects and negotiates `contexts`. `what` names the operation in error messages (no PHI).
   * Rejects with a SourceError, or with the signal's reason when aborted.
   */
  static async open(peer: DimsePeer, what: string, contexts: ContextProposal[], opts: { store?: StoreHandler; signal?: AbortSignal } = {}): Promise<ScuAssociation> {
    quietDimseLog();
    opts.signal?.throwIfAborted();
    const association = proposal(peer, contexts);
    const socket = net.connect({ host: peer.host, port: peer.port });
    return new ScuAssociation(socket, peer, what, opts.store).#negotiate(association, opts.signal);
  }

  #negotiate(association: Association, signal?: AbortSignal): Promise<ScuAssociation> {
    return new Promise<ScuAssociation>((resolve, reject) => {
      const settle = (failure?: unknown): void => {
        this.#onFailure.delete(settle);
        signal?.removeEventListener('abort', onAbort);
        if (failure !== undefined) reject(failure);
        else resolve(this);
      };
      const onAbort = (): void => this.terminate(signal!.reason);
      this.#onFailure.add(settle);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.on('connect', () => {
        // dcmjs-dimse never disables Nagle: every small PDU would wait for a delayed ACK.
        this.#socket.setNoDelay(true);
        this.#association = association;
        this.sendAssociationRequest(association);
      });
      this.on('associationAccepted', () => settle());
      this.on('associationRejected', (r: { result: number; source: number; reason: number }) => {
        const text = `${this.#what}: association rejected (result ${r.result}, source ${r.source}, reason ${r.reason})`;
        this.#fail(new SourceError(text, r.result === RejectResult.Transient));
      });
    });
  }

  /**
   * Sends `request` and resolves with its final response (whatever its status); `onPending`
   * sees each pending one. On abort: C-CANCEL, then the final response (which rejects with the
   * signal's reason), or an A-ABORT if none comes within timeoutMs.
   */
  run(request: QueryRequest, opts: { signal?: AbortSignal; onPending?: (r: Response) => void } = {}): Promise<Response> {
    if (this.#failure) return Promise.reject(this.#failure.reason);
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason);
    if (!this.#association?.getAcceptedPresentationContextFromRequest(request)) {
      const sop = request.getAffectedSopClassUid();
      return Promise.reject(new SourceError(`${this.#what}: the peer did not accept a presentation context for ${sop}`, false));
    }
    const { signal, onPending } = opts;
    return new Promise<Response>((resolve, reject) => {
      let graceTimer: NodeJS.Timeout | undefined;
      const settle = (failure?: unknown, response?: Response): void => {
        this.#onFailure.delete(settle);
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(graceTimer);
        if (failure !== undefined) reject(failure);
        else resolve(response!);
      };
      const onAbort = (): void => {
        const cancellable = request instanceof requests.CFindRequest || request instanceof requests.CMoveRequest || request instanceof requests.CGetRequest;
        if (!cancellable) return this.terminate(signal!.reason);
        try {
          this.sendCancel(request as requests.CMoveRequest);
        } catch {
          return this.terminate(signal!.reason);
        }
        graceTimer = setTimeout(() => this.terminate(signal!.reason), timeoutOf(this.#peer));
      };
      this.#onFailure.add(settle);
      signal?.addEventListener('abort', onAbort, { once: true });
      // A one-argument listener: dcmjs-dimse calls it synchronously, before it checks whether
      // the response ends the request (only 0xFF00 counts as pending there). 0xFF01 is pending
      // too, so it is rewritten to 0xFF00 here or the next request would go out too early.
      const listener = (r: Response): void => {
        const status = r.getStatus();
        if (isPending(status)) {
          if (status !== Status.Pending) r.setStatus(Status.Pending);
          onPending?.(r);
        } else {
          settle(signal?.aborted ? signal.reason : undefined, r);
        }
      };
      request.on('response', listener);
      this.sendRequests(request);
    });
  }

  /**
   * A-RELEASE, then the connection's end: resolves once the peer has closed it too (so that a
   * limiter slot is given back only when the PACS is done with the association), or after
   * timeoutMs. Never rejects: a failed release changes nothing for the caller.
   */
  release(): Promise<void> {
    if (this.#failure) return Promise.resolve();
    this.#ending = true;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#socket.destroy(), timeoutOf(this.#peer));
      this.#socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.on('associationReleaseResponse', () => this.#socket.end());
      try {
        this.sendAssociationReleaseRequest();
      } catch {
        this.#socket.destroy();
      }
    });
  }

  /** A-ABORT and close; pending and later calls reject with `reason`. */
  terminate(reason: unknown = transient(`${this.#what}: aborted`)): void {
    if (!this.#failure && !this.#socket.destroyed && this.#association) {
      try {
        this.sendAbort(constants.AbortSource.ServiceUser, constants.AbortReason.NotSpecified);
      } catch {
        /* nothing more to say to the peer */
      }
    }
    this.#fail(reason);
  }

  #fail(reason: unknown): void {
    if (this.#failure) return;
    this.#failure = { reason };
    this.#socket.destroy();
    void this.#store?.discard();
    if (this.#ending) return;
    for (const settle of [...this.#onFailure]) settle(reason);
  }

  // ------------------------------------------------------------------ Scp hooks (peer to us)

  /** A-ABORT from the peer. */
  override abort(): void {
    this.#fail(transient(`${this.#what}: association aborted by the peer`));
  }

  /** The peer wants to release while we wait for responses: answer, and fail what is pending. */
  override associationReleaseRequested(): void {
    try {
      this.sendAssociationReleaseResponse();
    } catch {
      /* closing anyway */
    }
    this.#fail(transient(`${this.#what}: association released by the peer before the end`));
  }

  override createStoreWritableStream(pc: PresentationContext, request: requests.CStoreRequest): Writable {
    if (!this.#store) throw new Error('C-STORE on an association without a store handler');
    return this.#store.createStream(pc, request);
  }

  override createDatasetFromStoreWritableStream(writable: Writable, pc: PresentationContext, callback: (dataset: Dataset) => void): void {
    callback(this.#store ? this.#store.datasetOf(writable, pc) : new Dataset({}));
  }

  override cStoreRequest(request: requests.CStoreRequest, callback: (response: responses.CStoreResponse) => void): void {
    const status = this.#store ? this.#store.store(request) : Promise.resolve(Status.SopClassNotSupported);
    void status.then((s) => {
      if (this.#failure) return;
      try {
        const response = responses.CStoreResponse.fromRequest(request);
        response.setStatus(s);
        callback(response);
      } catch (err) {
        this.#fail(transient(`${this.#what}: cannot answer a C-STORE sub-operation (${(err as Error).message})`));
      }
    });
  }
}

/** The A-ASSOCIATE-RQ content: our identity, `contexts`, one role selection item per SCP-role SOP class. */
function proposal(peer: DimsePeer, contexts: ContextProposal[]): Association {
  if (contexts.length > MAX_PRESENTATION_CONTEXTS) throw new SourceError(`${contexts.length} presentation contexts: at most ${MAX_PRESENTATION_CONTEXTS}`, false);
  const a = new dimseAssociation.Association(peer.callingAeTitle, peer.calledAeTitle);
  a.setImplementationClassUid(IMPLEMENTATION_CLASS_UID);
  a.setImplementationVersion(IMPLEMENTATION_VERSION_NAME);
  const withRole = new Set<string>();
  for (const c of contexts) {
    const id = a.addPresentationContext(c.abstractSyntax);
    for (const ts of c.transferSyntaxes) a.addTransferSyntaxToPresentationContext(id, ts);
    // dcmjs-dimse writes a role selection item for every context with a role set; the item is
    // per SOP class (it covers every context of that abstract syntax), so set it once.
    if (c.scpRole && !withRole.has(c.abstractSyntax)) {
      withRole.add(c.abstractSyntax);
      const pc = a.getPresentationContext(id);
      pc.setUserRole(false);
      pc.setProviderRole(true);
    }
  }
  return a;
}

/** Was this context accepted (by the peer, for the SOP class we proposed it for)? */
export function accepted(pc: PresentationContext | undefined, sopClassUid: string): boolean {
  return pc !== undefined && pc.getResult() === PresentationContextResult.Accept && pc.getAbstractSyntaxUid() === sopClassUid;
}

/** dcmjs-dimse checks its timeouts once a second: less than that is not honoured anyway. */
const timeoutOf = (peer: DimsePeer): number => Math.max(1000, peer.timeoutMs);

function transient(message: string): SourceError {
  return new SourceError(message, true);
}
