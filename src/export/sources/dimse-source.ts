import { constants, Dataset, requests } from 'dcmjs-dimse';
import type { SourceConfig } from '../../config/schema';
import type { SourceLimiter } from '../limiter';
import { FoundStudies } from '../query-plan';
import {
  ExportQuery, ExportSource, InstanceRef, RetrieveOptions, RetrieveProgress, RetrieveResult, RetrieveSink, SeriesRef, SourceError, StudyRef,
} from '../types';
import { ContextProposal, DimsePeer, NATIVE_SYNTAXES, Response, ScuAssociation, statusError, StoreHandler } from './dimse-association';
import { FALLBACK_STORAGE_CLASSES, GetReceiver, getContexts } from './dimse-get';
import {
  Identifier, instanceIdentifier, instanceOf, instanceTargets, RetrieveTarget, seriesIdentifier, seriesOf, seriesTarget, sopClassOf, studyFinds, studyOf,
} from './dimse-query';

export type DimseSourceConfig = Extract<SourceConfig, { type: 'dimse' }>;

export interface DimseSourceOptions {
  /** The gateway's AE title: ours towards the PACS when the source does not name one. */
  callingAeTitle: string;
  /** The AE title the PACS knows the gateway's SCP by (C-MOVE), when the source does not name one. */
  moveDestination: string;
}

const { SopClass } = constants;

/**
 * A PACS reached over DIMSE (Study Root Query/Retrieve): C-FIND to find, C-MOVE to the
 * gateway's own SCP (delivery 'c-move') or C-GET into the sink (delivery 'sink'), C-ECHO to
 * probe. One association per call (every one through the limiter), released at the end; a
 * call's several requests go one after the other on it.
 *
 * Errors are SourceErrors naming the operation, the PACS and a status code: never an
 * identifier (patient ID, accession number, UID), which is PHI. See dimse-association.ts for
 * which failures are transient.
 */
export class DimseSource implements ExportSource {
  readonly delivery: 'sink' | 'c-move';
  readonly #peer: DimsePeer;
  readonly #moveDestination: string;
  readonly #limiter: SourceLimiter | undefined;
  /** Open associations, aborted by close(). */
  readonly #live = new Set<ScuAssociation>();

  constructor(
    readonly name: string,
    cfg: DimseSourceConfig,
    opts: DimseSourceOptions,
    limiter?: SourceLimiter,
  ) {
    this.delivery = cfg.retrieve === 'c-get' ? 'sink' : 'c-move';
    this.#peer = { host: cfg.host, port: cfg.port, callingAeTitle: cfg.callingAeTitle ?? opts.callingAeTitle, calledAeTitle: cfg.aeTitle, timeoutMs: cfg.timeoutMs };
    this.#moveDestination = cfg.moveDestination ?? opts.moveDestination;
    this.#limiter = limiter;
  }

  // ------------------------------------------------------------------ find

  async findStudies(query: ExportQuery, signal?: AbortSignal): Promise<StudyRef[]> {
    const finds = studyFinds(query);
    const found = new FoundStudies(query);
    await this.#find(finds.map((f) => f.identifier), signal, (ds, i) => found.add(studyOf(ds), finds[i].sent));
    return found.list();
  }

  async findSeries(studyUid: string, signal?: AbortSignal): Promise<SeriesRef[]> {
    const found = new Map<string, SeriesRef>();
    await this.#find([seriesIdentifier(studyUid)], signal, (ds) => {
      const s = seriesOf(ds, studyUid);
      if (s && !found.has(s.seriesUid)) found.set(s.seriesUid, s);
    });
    return [...found.values()];
  }

  async findInstances(studyUid: string, seriesUid: string, signal?: AbortSignal): Promise<InstanceRef[]> {
    const found = new Map<string, InstanceRef>();
    await this.#find([instanceIdentifier(studyUid, seriesUid)], signal, (ds) => {
      const i = instanceOf(ds, studyUid, seriesUid);
      if (i && !found.has(i.sopInstanceUid)) found.set(i.sopInstanceUid, i);
    });
    return [...found.values()];
  }

  /** C-FIND requests one after the other on one association; `onMatch` sees each pending answer and the index of its request. */
  #find(identifiers: Identifier[], signal: AbortSignal | undefined, onMatch: (ds: Dataset | undefined, request: number) => void): Promise<void> {
    return this.#session('C-FIND', [modelContext(SopClass.StudyRootQueryRetrieveInformationModelFind)], signal, async (a, what) => {
      for (const [i, identifier] of identifiers.entries()) {
        const request = new requests.CFindRequest();
        request.setDataset(new Dataset(identifier));
        const final = await a.run(request, { signal, onPending: (r) => onMatch(r.getDataset(), i) });
        throwIfFailed(final, what);
      }
    });
  }

  // ------------------------------------------------------------------ retrieve

  retrieveSeries(series: SeriesRef, sink: RetrieveSink, opts: RetrieveOptions = {}): Promise<RetrieveResult> {
    return this.#retrieve([seriesTarget(series)], sink, opts, () => this.#sopClassesOf([series], opts.signal));
  }

  async retrieveInstances(instances: InstanceRef[], sink: RetrieveSink, opts: RetrieveOptions = {}): Promise<RetrieveResult> {
    if (!instances.length) return { received: 0, failed: 0 };
    const known = instances.map((i) => i.sopClassUid).filter((c): c is string => !!c);
    const classes = known.length === instances.length ? async () => known : () => this.#sopClassesOf(instances, opts.signal);
    return this.#retrieve(instanceTargets(instances), sink, opts, classes);
  }

  #retrieve(targets: RetrieveTarget[], sink: RetrieveSink, opts: RetrieveOptions, sopClasses: () => Promise<string[]>): Promise<RetrieveResult> {
    return this.delivery === 'c-move' ? this.#move(targets, opts) : this.#get(targets, sink, opts, sopClasses);
  }

  /** The PACS sends to our SCP (no sink here); the result is what its final responses count. */
  #move(targets: RetrieveTarget[], opts: RetrieveOptions): Promise<RetrieveResult> {
    const request = (id: Identifier): requests.CMoveRequest => moveRequest(id, this.#moveDestination);
    return this.#session('C-MOVE', [modelContext(SopClass.StudyRootQueryRetrieveInformationModelMove)], opts.signal, (a, what) => runRetrieves(a, what, targets, request, opts));
  }

  /**
   * The instances come back on the C-GET association, into the sink. `received` is what the
   * sink committed (the PACS does not count an instance it was sending when a C-CANCEL came),
   * `failed` what the PACS counted as failed. A failing sink stops the C-GET (C-CANCEL) and
   * its error is what the caller gets.
   */
  async #get(targets: RetrieveTarget[], sink: RetrieveSink, opts: RetrieveOptions, sopClasses: () => Promise<string[]>): Promise<RetrieveResult> {
    const classes = await sopClasses();
    const sinkFailed = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, sinkFailed.signal]) : sinkFailed.signal;
    // The PACS is the calling side of the C-STORE sub-operations.
    const from = { source: 'dimse' as const, callingAE: this.#peer.calledAeTitle, calledAE: this.#peer.callingAeTitle, peer: this.#peer.host };
    const receiver = new GetReceiver(sink, from, (err) => sinkFailed.abort(err));
    const contexts = getContexts(classes.length ? classes : [...FALLBACK_STORAGE_CLASSES]);
    const result = await this.#session('C-GET', contexts, signal, (a, what) => runRetrieves(a, what, targets, getRequest, { ...opts, signal }), receiver);
    return { received: receiver.received, failed: result.failed };
  }

  /**
   * The SOP classes of the instances to get: an IMAGE-level C-FIND per series, on one
   * association. None found (a PACS not returning SOPClassUID) -> the C-GET proposes a fixed
   * list of storage classes instead.
   */
  async #sopClassesOf(refs: Array<{ studyUid: string; seriesUid: string }>, signal?: AbortSignal): Promise<string[]> {
    const series = new Map(refs.map((r) => [`${r.studyUid}\\${r.seriesUid}`, r]));
    const classes = new Set<string>();
    await this.#find([...series.values()].map((s) => instanceIdentifier(s.studyUid, s.seriesUid)), signal, (ds) => {
      const c = sopClassOf(ds);
      if (c) classes.add(c);
    });
    return [...classes];
  }

  // ------------------------------------------------------------------ probe, close

  async probe(signal?: AbortSignal): Promise<void> {
    await this.#session('C-ECHO', [modelContext(SopClass.Verification)], signal, async (a, what) => {
      throwIfFailed(await a.run(new requests.CEchoRequest(), { signal }), what);
    });
  }

  /** Aborts the associations still open (their calls reject with a transient SourceError). */
  async close(): Promise<void> {
    for (const a of this.#live) a.terminate(new SourceError(`${this.name}: source closed`, true));
  }

  // ------------------------------------------------------------------ associations

  /**
   * One association (through the limiter) for `body`, released after it even when it threw: a
   * failure status or a cancelled request leave the association usable, and a broken one is
   * already closed (release() then does nothing).
   */
  #session<T>(op: string, contexts: ContextProposal[], signal: AbortSignal | undefined, body: (a: ScuAssociation, what: string) => Promise<T>, store?: StoreHandler): Promise<T> {
    const what = `${this.name}: ${op} ${this.#peer.calledAeTitle}@${this.#peer.host}:${this.#peer.port}`;
    const run = async (): Promise<T> => {
      const a = await ScuAssociation.open(this.#peer, what, contexts, { store, signal });
      this.#live.add(a);
      try {
        return await body(a, what);
      } finally {
        await a.release();
        this.#live.delete(a);
      }
    };
    return this.#limiter ? this.#limiter.run(run, signal) : run();
  }
}

// ---------------------------------------------------------------- requests and responses

function modelContext(sopClass: string): ContextProposal {
  return { abstractSyntax: sopClass, transferSyntaxes: NATIVE_SYNTAXES };
}

function moveRequest(identifier: Identifier, destination: string): requests.CMoveRequest {
  const r = new requests.CMoveRequest();
  r.setDataset(new Dataset(identifier));
  r.getCommandDataset().setElement('MoveDestination', destination);
  return r;
}

function getRequest(identifier: Identifier): requests.CGetRequest {
  const r = new requests.CGetRequest();
  r.setDataset(new Dataset(identifier));
  return r;
}

function throwIfFailed(final: Response, what: string): void {
  const err = statusError(final.getStatus(), what);
  if (err) throw err;
}

/** The retrieve requests one after the other, progress from their pending responses. */
async function runRetrieves(
  a: ScuAssociation,
  what: string,
  targets: RetrieveTarget[],
  request: (identifier: Identifier) => requests.CMoveRequest | requests.CGetRequest,
  opts: RetrieveOptions,
): Promise<RetrieveResult> {
  const tally = new RetrieveTally(targets, opts.onProgress);
  for (const [i, target] of targets.entries()) {
    const final = await a.run(request(target.identifier), { signal: opts.signal, onPending: (r) => tally.pending(i, r) });
    throwIfFailed(final, what);
    tally.final(i, final);
  }
  return tally.result();
}

/** Sub-operation counters of C-MOVE / C-GET responses (PS3.7 C.4.2.1.5 / C.4.3.1.5). */
interface Counters {
  remaining?: number;
  delivered: number;
  failed: number;
}

function countersOf(r: Response): Counters {
  const m = r as unknown as { getRemaining(): number | undefined; getCompleted(): number | undefined; getWarnings(): number | undefined; getFailures(): number | undefined };
  const n = (v: number | undefined): number => (typeof v === 'number' && v >= 0 ? v : 0);
  const remaining = m.getRemaining();
  return { remaining: typeof remaining === 'number' ? remaining : undefined, delivered: n(m.getCompleted()) + n(m.getWarnings()), failed: n(m.getFailures()) };
}

/** Adds up the requests of one retrieve: finished ones from their final response, the current one from its last pending one. */
class RetrieveTally {
  #delivered = 0;
  #failed = 0;

  constructor(
    private readonly targets: RetrieveTarget[],
    private readonly onProgress?: (p: RetrieveProgress) => void,
  ) {}

  pending(i: number, r: Response): void {
    const c = countersOf(r);
    this.#report(i, this.#delivered + c.delivered, this.#failed + c.failed, c.remaining);
  }

  final(i: number, r: Response): void {
    const c = countersOf(r);
    this.#delivered += c.delivered;
    this.#failed += c.failed;
    this.#report(i, this.#delivered, this.#failed, 0);
  }

  result(): RetrieveResult {
    return { received: this.#delivered, failed: this.#failed };
  }

  /** Remaining includes the requests not sent yet when their size is known. */
  #report(i: number, completed: number, failed: number, remaining: number | undefined): void {
    if (!this.onProgress) return;
    const later = this.targets.slice(i + 1).map((t) => t.expected);
    const known = remaining !== undefined && later.every((n) => n !== undefined);
    const p: RetrieveProgress = { completed, failed };
    if (known) p.remaining = remaining + later.reduce((s: number, n) => s + (n ?? 0), 0);
    try {
      this.onProgress(p);
    } catch {
      /* a failing progress callback must not break the retrieve */
    }
  }
}
