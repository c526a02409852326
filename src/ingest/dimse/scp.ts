import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { association as assoc, Dataset, Implementation, requests, responses, Scp } from 'dcmjs-dimse';
import type { Config } from '../../config/schema';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../../dicom/meta';
import type { AssociationPolicy } from './association-policy';
import { encodeResponseCommand } from './command-set';
import { ContextResult, DimseStatus, RejectReason, RejectResult, RejectSource, statusForOutcome, StoreOutcome } from './statuses';
import { ReceivedDataset, StoreResult, StoreStream } from './store-stream';
import type { ExportArrival, ExportAttribution, IngestEvent, IngestSink, ReceiveMeta } from './types';

type Association = assoc.Association;
type PresentationContext = assoc.PresentationContext;

/** Shared by every connection of one server. */
export interface ScpContext {
  cfg: Config['dimse'];
  policy: AssociationPolicy;
  sink: IngestSink;
  /** Never throws (the server wraps the user's listener). */
  emit: (e: IngestEvent) => void;
  /** Associations accepted and still open. */
  activeAssociations(): number;
  associationAccepted(scp: IngestScp): void;
  /** Export jobs waiting for C-MOVE sub-operations (absent when there are none). */
  attribute?: ExportAttribution;
}

/** Time a peer has to send its A-ASSOCIATE-RQ after connecting. */
export const ASSOCIATION_REQUEST_TIMEOUT_MS = 30_000;
/** An accepted association with no PDU for this long is aborted (dcmjs-dimse's PDU timeout). */
export const PDU_IDLE_TIMEOUT_MS = 60_000;
/** Socket idle timeout (no byte either way). */
export const SOCKET_IDLE_TIMEOUT_MS = 180_000;
/** After A-ASSOCIATE-RJ or A-RELEASE-RP the peer closes the connection; if it does not, we do. */
export const LINGER_AFTER_END_MS = 5_000;
/** ErrorComment (0000,0902) is an LO: at most 64 characters. */
const ERROR_COMMENT_MAX = 64;

const ERROR_COMMENTS: Record<Exclude<StoreOutcome, 'stored' | 'quarantined'>, string> = {
  'no-room': 'spool full, retry later',
  'sink-error': 'spool error, retry later',
  'context-not-accepted': 'no accepted presentation context for this SOP class',
  'no-dataset': 'C-STORE without a data set',
};

/** Fields of dcmjs-dimse's Network that its d.ts does not declare. */
interface NetworkInternals {
  connected: boolean;
  connectedTime: number | undefined;
}

/**
 * The C-ECHO / C-STORE SCP of one connection. dcmjs-dimse calls these overrides from its PDU
 * handlers, where any exception aborts the association: every override catches everything.
 */
export class IngestScp extends Scp {
  readonly #ctx: ScpContext;
  readonly #socket: Socket;
  readonly #peer: string;
  #callingAE = '';
  #calledAE = '';
  /** The C-STORE whose data set is arriving. */
  #current: StoreStream | undefined;
  /** Work that must settle before a release response or a server close. */
  readonly #inflight = new Set<Promise<unknown>>();
  #lingerTimer: NodeJS.Timeout | undefined;
  #ended = false;

  constructor(socket: Socket, peer: string, ctx: ScpContext) {
    super(socket, {
      connectTimeout: SOCKET_IDLE_TIMEOUT_MS,
      associationTimeout: ASSOCIATION_REQUEST_TIMEOUT_MS,
      pduTimeout: PDU_IDLE_TIMEOUT_MS,
    });
    this.#ctx = ctx;
    this.#socket = socket;
    this.#peer = peer;
    // dcmjs-dimse's Server sets `connected`; nobody sets `connectedTime` on the accepting side,
    // which disables its association-request timeout. We create Scps ourselves: set both.
    const self = this as unknown as NetworkInternals;
    self.connected = true;
    self.connectedTime = Date.now();
  }

  // ------------------------------------------------------------------ association

  override associationRequested(association: Association): void {
    let answered = false;
    try {
      this.#callingAE = association.getCallingAeTitle() ?? '';
      this.#calledAE = association.getCalledAeTitle() ?? '';
      const decision = this.#ctx.policy.decide({
        calledAE: this.#calledAE,
        callingAE: this.#callingAE,
        peer: this.#peer,
        activeAssociations: this.#ctx.activeAssociations(),
      });
      if (!decision.accept) {
        answered = true;
        this.sendAssociationReject(decision.result, decision.source, decision.reason);
        this.#event('association.rejected', decision.why);
        this.#lingerThenClose();
        return;
      }
      for (const { context } of association.getPresentationContexts()) {
        const d = this.#ctx.policy.decideContext(context.getAbstractSyntaxUid(), context.getTransferSyntaxUids());
        context.setResult(d.result, d.transferSyntax);
      }
      answered = true;
      this.#sendAccept(association);
      this.#ctx.associationAccepted(this);
      this.#event('association.accepted');
    } catch (err) {
      if (answered) {
        // An AC or RJ may be on the wire already: a second answer would be a protocol error.
        this.#safely(() => this.#socket.destroy());
        return;
      }
      this.#safely(() => this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.NoReasonGiven));
      this.#event('association.rejected', `internal error: ${describe(err)}`);
      this.#lingerThenClose();
    }
  }

  /**
   * dcmjs-dimse writes its own implementation UID and min(peer max, global max) into the AC, from
   * process-wide settings. Set ours just for this (synchronous) write, then put theirs back.
   */
  #sendAccept(association: Association): void {
    const uid = Implementation.getImplementationClassUid();
    const version = Implementation.getImplementationVersion();
    const maxPdu = Implementation.getMaxPduLength();
    const ours = this.#ctx.cfg.maxPduLength;
    association.setMaxPduLength(ours);
    try {
      Implementation.setImplementationClassUid(IMPLEMENTATION_CLASS_UID);
      Implementation.setImplementationVersion(IMPLEMENTATION_VERSION_NAME);
      Implementation.setMaxPduLength(ours);
      this.sendAssociationAccept();
    } finally {
      this.#safely(() => Implementation.setImplementationClassUid(uid));
      this.#safely(() => Implementation.setImplementationVersion(version));
      this.#safely(() => Implementation.setMaxPduLength(maxPdu));
    }
  }

  override associationReleaseRequested(): void {
    // Answer only once every C-STORE of this association has its response.
    void Promise.allSettled([...this.#inflight]).then(() => {
      this.#safely(() => this.sendAssociationReleaseResponse());
      this.#lingerThenClose();
    });
  }

  override abort(): void {
    this.#safely(() => this.#socket.destroy());
  }

  // ------------------------------------------------------------------ C-ECHO

  override cEchoRequest(request: requests.CEchoRequest, callback: (response: responses.CEchoResponse) => void): void {
    this.#safely(() => {
      const response = responses.CEchoResponse.fromRequest(request);
      response.setStatus(DimseStatus.Success);
      callback(withOwnCommandEncoding(response));
    });
  }

  // ------------------------------------------------------------------ C-STORE

  /** Called by dcmjs-dimse on the first data PDV of a C-STORE: where the bytes will go. */
  override createStoreWritableStream(pc: PresentationContext, request: requests.CStoreRequest): Writable {
    const previous = this.#current;
    if (previous) this.#track(previous.discard());
    let sopClassUid = '';
    let sopInstanceUid = '';
    let contextAccepted = false;
    try {
      sopClassUid = request.getAffectedSopClassUid() ?? '';
      sopInstanceUid = request.getAffectedSopInstanceUid() ?? '';
      contextAccepted = pc !== undefined && pc.getResult() === ContextResult.Accept && pc.getAbstractSyntaxUid() === sopClassUid;
    } catch {
      contextAccepted = false;
    }
    const meta: ReceiveMeta = {
      source: 'dimse',
      callingAE: this.#callingAE,
      calledAE: this.#calledAE,
      peer: this.#peer,
      receivedAt: new Date().toISOString(),
    };
    const job = sopInstanceUid ? this.#ctx.attribute?.(sopInstanceUid, this.#callingAE) : undefined;
    if (job) meta.job = job;
    const transferSyntaxUid = contextAccepted ? (pc.getAcceptedTransferSyntaxUid() ?? '') : '';
    const stream = new StoreStream(this.#ctx.sink, meta, { sopClassUid, sopInstanceUid, transferSyntaxUid, contextAccepted });
    this.#current = stream;
    return stream;
  }

  /** Called once the last PDV is written (and the stream ended): hand a placeholder data set on. */
  override createDatasetFromStoreWritableStream(writable: Writable, pc: PresentationContext, callback: (dataset: Dataset) => void): void {
    let dataset: Dataset;
    try {
      dataset = writable instanceof StoreStream ? new ReceivedDataset(writable) : new Dataset({}, pc?.getAcceptedTransferSyntaxUid());
    } catch {
      dataset = new Dataset({});
    }
    this.#safely(() => callback(dataset));
  }

  override cStoreRequest(request: requests.CStoreRequest, callback: (response: responses.CStoreResponse) => void): void {
    let dataset: Dataset | undefined;
    this.#safely(() => {
      dataset = request.getDataset();
    });
    const store = dataset instanceof ReceivedDataset ? dataset.store : undefined;
    if (store && store === this.#current) this.#current = undefined;
    const work = (store ? store.finish() : Promise.resolve<StoreResult>({ outcome: 'no-dataset', bytes: 0 }))
      .then((result) => {
        this.#report(result, store?.meta.job ? { job: store.meta.job, sopInstanceUid: store.target.sopInstanceUid } : undefined);
        this.#respond(request, callback, result.outcome, result.commit?.status === 'quarantined' ? result.commit.code : '');
      })
      .catch(() => this.#respond(request, callback, 'sink-error'));
    this.#track(work);
  }

  #report(result: StoreResult, arrival: ExportArrival | undefined): void {
    const commit = result.commit;
    if (!commit) return;
    const exp = arrival ? { export: arrival } : {};
    if (commit.status === 'stored') {
      this.#ctx.emit({ type: 'instance.received', spoolId: commit.entry.id, callingAE: this.#callingAE, bytes: result.bytes, ...exp });
    } else {
      this.#ctx.emit({ type: 'instance.quarantined', spoolId: commit.entry.id, stage: 'ingest', code: commit.code, reason: commit.reason, ...exp });
    }
  }

  #respond(request: requests.CStoreRequest, callback: (response: responses.CStoreResponse) => void, outcome: StoreOutcome, code = ''): void {
    if (this.#socket.destroyed) return;
    this.#safely(() => {
      const response = responses.CStoreResponse.fromRequest(request);
      response.setStatus(statusForOutcome(outcome));
      if (outcome !== 'stored') {
        const comment = outcome === 'quarantined' ? `cannot understand, quarantined (${safeCode(code)})` : ERROR_COMMENTS[outcome];
        response.setErrorComment(comment.slice(0, ERROR_COMMENT_MAX));
      }
      callback(withOwnCommandEncoding(response));
    });
  }

  // ------------------------------------------------------------------ connection end

  /** The socket closed (release, abort, error or server close): drop a half-received instance. */
  connectionClosed(): void {
    this.#ended = true;
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    const current = this.#current;
    this.#current = undefined;
    if (current) this.#track(current.discard());
  }

  /** Resolves once every C-STORE of this connection is answered or dropped. */
  settled(): Promise<unknown> {
    return Promise.allSettled([...this.#inflight]);
  }

  #lingerThenClose(): void {
    if (this.#ended || this.#lingerTimer) return;
    this.#lingerTimer = setTimeout(() => this.#socket.destroy(), LINGER_AFTER_END_MS);
    this.#lingerTimer.unref();
  }

  #track(p: Promise<unknown>): void {
    const settled = p.catch(() => undefined);
    this.#inflight.add(settled);
    void settled.then(() => this.#inflight.delete(settled));
  }

  #event(type: 'association.accepted' | 'association.rejected', reason?: string): void {
    this.#ctx.emit({
      type, callingAE: this.#callingAE, calledAE: this.#calledAE, peer: this.#peer,
      ...(reason === undefined ? {} : { reason }),
    });
  }

  /** Runs `fn`, swallowing anything it throws: a throw here would abort the association. */
  #safely(fn: () => void): void {
    try {
      fn();
    } catch {
      /* the connection is going away or the library failed; nothing useful to do */
    }
  }
}

/**
 * The response's command set encoded by ./command-set.ts when the library sends it (from the
 * elements as they are then), not denaturalized through dcmjs; the library's own encoding when
 * that encoder declines.
 */
export function withOwnCommandEncoding<T extends responses.CEchoResponse | responses.CStoreResponse>(response: T): T {
  const command = response.getCommandDataset();
  const library = command.getDenaturalizedCommandDataset.bind(command);
  command.getDenaturalizedCommandDataset = (writeOptions) => encodeResponseCommand(command.getElements() as Record<string, unknown>) ?? library(writeOptions);
  return response;
}

/** The sink's error code as sent to the peer: a short code, never free text. */
function safeCode(code: string): string {
  return code.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 24);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
