/**
 * The contract between the DIMSE ingest and whatever stores what it receives (the durable
 * spool in src/spool implements IngestSink with these exact shapes).
 */

/** Who sent an instance; recorded beside it, never read from the DICOM bytes. */
export interface ReceiveMeta {
  source: 'dimse';
  callingAE: string;
  calledAE: string;
  /** Peer IP address (IPv4-mapped IPv6 addresses are given as plain IPv4). */
  peer: string;
  /** ISO 8601 time the C-STORE data started to arrive. */
  receivedAt: string;
  /** The export job whose C-MOVE sent it (see ScpContext.attribute). */
  job?: string;
}

export type CommitResult =
  | { status: 'stored'; entry: { id: string } }
  | { status: 'quarantined'; entry: { id: string }; code: string; reason: string };

export interface SpoolWriter {
  /** Appends received bytes; must not throw for I/O errors (report them from commit()). */
  write(chunk: Buffer): void;
  /** Makes the instance durable (fsync) and validates it; Success is answered only after this resolves. */
  commit(): Promise<CommitResult>;
  /** Drops what was written; a no-op after commit() or a previous abort(). */
  abort(): Promise<void>;
  readonly bytes: number;
}

export interface IngestSink {
  /** False when the spool is too full to take another instance (answered with 0xA700). */
  hasRoom(): boolean;
  /** `prefix` is the preamble + File Meta group built for the received instance. */
  openWriter(meta: ReceiveMeta, prefix: Buffer): SpoolWriter;
}

export type IngestEvent =
  | { type: 'association.accepted' | 'association.rejected'; callingAE: string; calledAE: string; peer: string; reason?: string }
  | { type: 'instance.received'; spoolId: string; callingAE: string; bytes: number; export?: ExportArrival }
  | { type: 'instance.quarantined'; spoolId: string; stage: 'ingest'; code: string; reason: string; export?: ExportArrival };

/** An instance an export job's C-MOVE asked for (internal: holds the original SOP Instance UID, never audited as is). */
export interface ExportArrival {
  job: string;
  sopInstanceUid: string;
}

/**
 * Tells whether an arriving C-STORE is one an export job's C-MOVE asked for (by SOP Instance
 * UID and the PACS's calling AE title); the job id is recorded with the spool entry.
 */
export type ExportAttribution = (sopInstanceUid: string, callingAE: string) => string | undefined;

export type IngestEventListener = (e: IngestEvent) => void;
