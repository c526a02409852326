import type { Writable } from 'node:stream';
import { association as dimseAssociation, constants, Dataset, requests } from 'dcmjs-dimse';
import { DimseStatus, statusForOutcome } from '../../ingest/dimse/statuses';
import { ReceivedDataset, StoreStream } from '../../ingest/dimse/store-stream';
import type { CommitResult, IngestSink, ReceiveMeta, SpoolWriter } from '../../ingest/dimse/types';
import { RetrieveSink, SourceError } from '../types';
import { MAX_PRESENTATION_CONTEXTS } from '../../forward/c-store';
import { accepted, ContextProposal, NATIVE_SYNTAXES, StoreHandler } from './dimse-association';

type PresentationContext = dimseAssociation.PresentationContext;

/**
 * The C-STORE sub-operations of a C-GET, written losslessly into a RetrieveSink.
 *
 * Each data set goes through the ingest SCP's StoreStream: every PDV value is handed to the
 * sink's writer as it comes off the wire, never parsed, naturalized or re-encoded, behind a
 * new File Meta group (src/dicom/meta.ts) for the request's SOP class and instance and the
 * transfer syntax of the presentation context it came on. Nothing of the data set is lost;
 * the meta group is ours (the PACS's own meta group never travels over DIMSE).
 *
 * Memory: one instance at a time, and none of it kept here: the PACS sends the next C-STORE
 * only after our response, which waits for the sink's commit.
 *
 * Answers: Success for an instance the sink committed (stored or quarantined: either way we
 * hold the bytes, and the PACS cannot send them better); 0xA700 when the sink failed (the job
 * is then stopped: `onSinkError` cancels the C-GET); 0x0122 for data on a context we did not
 * accept for that SOP class.
 */
export class GetReceiver implements StoreHandler {
  /** Instances committed to the sink (stored or quarantined). */
  received = 0;
  readonly #sink: IngestSink;
  readonly #meta: Omit<ReceiveMeta, 'receivedAt'>;
  readonly #onSinkError: (err: unknown) => void;
  #current: StoreStream | undefined;

  constructor(sink: RetrieveSink, meta: Omit<ReceiveMeta, 'receivedAt'>, onSinkError: (err: unknown) => void) {
    this.#sink = ingestSinkOf(sink);
    this.#meta = meta;
    this.#onSinkError = onSinkError;
  }

  createStream(pc: PresentationContext, request: requests.CStoreRequest): Writable {
    // A previous C-STORE whose data never completed (cannot happen on a sane association).
    void this.discard();
    const sopClassUid = request.getAffectedSopClassUid() ?? '';
    const contextAccepted = accepted(pc, sopClassUid);
    const stream = new StoreStream(this.#sink, { ...this.#meta, receivedAt: new Date().toISOString() }, {
      sopClassUid,
      sopInstanceUid: request.getAffectedSopInstanceUid() ?? '',
      transferSyntaxUid: contextAccepted ? (pc.getAcceptedTransferSyntaxUid() ?? '') : '',
      contextAccepted,
    });
    this.#current = stream;
    return stream;
  }

  datasetOf(stream: Writable, pc: PresentationContext): Dataset {
    return stream instanceof StoreStream ? new ReceivedDataset(stream) : new Dataset({}, pc?.getAcceptedTransferSyntaxUid());
  }

  async store(request: requests.CStoreRequest): Promise<number> {
    const dataset = request.getDataset();
    const stream = dataset instanceof ReceivedDataset ? dataset.store : undefined;
    if (!stream) return statusForOutcome('no-dataset');
    if (stream === this.#current) this.#current = undefined;
    const result = await stream.finish();
    if (result.outcome === 'stored' || result.outcome === 'quarantined') {
      this.received++;
      return DimseStatus.Success;
    }
    if (result.outcome === 'sink-error') this.#onSinkError(result.error ?? new Error('the retrieve sink failed'));
    return statusForOutcome(result.outcome);
  }

  async discard(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    if (current) await current.discard();
  }
}

/**
 * A RetrieveSink seen as the ingest's IngestSink, so that StoreStream can write into it. The
 * retrieve sink has no admission check (its commit() reports failures) and no spool id to
 * give back; StoreStream only passes the entry on, and nobody reads it here.
 */
function ingestSinkOf(sink: RetrieveSink): IngestSink {
  return {
    hasRoom: () => true,
    openWriter: (_meta: ReceiveMeta, prefix: Buffer): SpoolWriter => {
      const writer = sink.open();
      let bytes = 0;
      const write = (chunk: Buffer): void => {
        bytes += chunk.length;
        writer.write(chunk);
      };
      try {
        write(prefix);
      } catch (err) {
        void writer.abort().catch(() => undefined);
        throw err;
      }
      return {
        write,
        get bytes() {
          return bytes;
        },
        abort: () => writer.abort(),
        commit: async (): Promise<CommitResult> => {
          const status = await writer.commit();
          return status === 'stored' ? { status, entry: { id: '' } } : { status, entry: { id: '' }, code: '', reason: '' };
        },
      };
    },
  };
}

// ---------------------------------------------------------------- presentation contexts

/**
 * Transfer syntaxes a C-GET proposes for each storage SOP class, most common first. The PACS
 * sends an instance unchanged only on a context accepted with its stored syntax (Orthanc:
 * OrthancGetRequestHandler prefers the source syntax, else transcodes when allowed), and a
 * context is accepted with one syntax: hence one context per syntax while they fit.
 */
export const STORAGE_SYNTAXES: readonly string[] = [
  ...NATIVE_SYNTAXES,
  '1.2.840.10008.1.2.4.50', // JPEG Baseline
  '1.2.840.10008.1.2.4.70', // JPEG Lossless, selection value 1
  '1.2.840.10008.1.2.4.57', // JPEG Lossless
  '1.2.840.10008.1.2.4.51', // JPEG Extended
  '1.2.840.10008.1.2.4.90', // JPEG 2000 lossless
  '1.2.840.10008.1.2.4.91', // JPEG 2000
  '1.2.840.10008.1.2.4.80', // JPEG-LS lossless
  '1.2.840.10008.1.2.4.81', // JPEG-LS near-lossless
  '1.2.840.10008.1.2.5', // RLE Lossless
  '1.2.840.10008.1.2.1.99', // Deflated Explicit VR Little Endian
  '1.2.840.10008.1.2.2', // Explicit VR Big Endian (retired)
  '1.2.840.10008.1.2.4.201', // HTJ2K lossless
  '1.2.840.10008.1.2.4.202', // HTJ2K lossless RPCL
  '1.2.840.10008.1.2.4.203', // HTJ2K
  '1.2.840.10008.1.2.4.100', // MPEG2 MP@ML
  '1.2.840.10008.1.2.4.101', // MPEG2 MP@HL
  '1.2.840.10008.1.2.4.102', // MPEG-4 AVC/H.264 HP@4.1
  '1.2.840.10008.1.2.4.103', // MPEG-4 AVC/H.264 BD-compatible HP@4.1
  '1.2.840.10008.1.2.4.104', // MPEG-4 AVC/H.264 HP@4.2 2D
  '1.2.840.10008.1.2.4.105', // MPEG-4 AVC/H.264 HP@4.2 3D
  '1.2.840.10008.1.2.4.106', // MPEG-4 AVC/H.264 Stereo HP@4.2
  '1.2.840.10008.1.2.4.107', // HEVC/H.265 Main
  '1.2.840.10008.1.2.4.108', // HEVC/H.265 Main 10
  '1.2.840.10008.1.2.1.98', // Encapsulated Uncompressed Explicit VR Little Endian
  '1.2.840.10008.1.2.4.110', // JPEG XL lossless
  '1.2.840.10008.1.2.4.111', // JPEG XL JPEG recompression
  '1.2.840.10008.1.2.4.112', // JPEG XL
];

/** When the series' SOP classes are unknown (the PACS returned none at IMAGE level). */
export const FALLBACK_STORAGE_CLASSES: readonly string[] = Object.values(constants.StorageClass);

/**
 * The contexts of a C-GET association: the Study Root GET model, and for each storage SOP class
 * one context per syntax with the SCP role for us. With many SOP classes the 128-context limit
 * leaves fewer per class: the most common syntaxes keep a context of their own and the rest
 * share one (the PACS then picks one of them and may transcode).
 */
export function getContexts(sopClasses: string[]): ContextProposal[] {
  const classes = [...new Set(sopClasses)];
  const budget = Math.floor((MAX_PRESENTATION_CONTEXTS - 1) / Math.max(1, classes.length));
  if (budget < 2) throw new SourceError(`C-GET: ${classes.length} SOP classes do not fit in one association`, false);
  const model = { abstractSyntax: constants.SopClass.StudyRootQueryRetrieveInformationModelGet, transferSyntaxes: NATIVE_SYNTAXES };
  return [model, ...classes.flatMap((c) => storageContexts(c, budget))];
}

function storageContexts(sopClass: string, budget: number): ContextProposal[] {
  const own = budget >= STORAGE_SYNTAXES.length ? STORAGE_SYNTAXES : STORAGE_SYNTAXES.slice(0, budget - 1);
  const shared = STORAGE_SYNTAXES.slice(own.length);
  const groups = [...own.map((ts) => [ts]), ...(shared.length ? [shared] : [])];
  return groups.map((transferSyntaxes) => ({ abstractSyntax: sopClass, transferSyntaxes: [...transferSyntaxes], scpRole: true }));
}
