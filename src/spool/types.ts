/** Who sent an instance, recorded beside it in the spool (never read from the DICOM bytes). */
export interface ReceiveMeta {
  source: 'dimse' | 'dicomweb' | 'folder' | 'export';
  /** The export job that retrieved it (WADO-RS, C-GET, or C-MOVE to our SCP). */
  job?: string;
  callingAE?: string;
  calledAE?: string;
  peer?: string;
  receivedAt: string;
}

export type SpoolState = 'incoming' | 'processing' | 'quarantine';

export interface SpoolEntry {
  id: string;
  /** Absolute path of the Part 10 file. */
  file: string;
  meta: ReceiveMeta;
  state: SpoolState;
}

export type CommitResult =
  | { status: 'stored'; entry: SpoolEntry }
  | { status: 'quarantined'; entry: SpoolEntry; code: string; reason: string };

export interface SpoolWriter {
  /**
   * Appends bytes (small chunks are copied into a staging buffer; big ones are written as they
   * are, later, on the thread pool: the chunk must not be changed after the call).
   */
  write(chunk: Buffer): void;
  /** Makes the instance durable and visible; only after this resolves may the sender get Success. */
  commit(): Promise<CommitResult>;
  /** Drops the temp file; a no-op after commit() or a previous abort(). */
  abort(): Promise<void>;
  readonly bytes: number;
}

export interface SpoolOptions {
  /** fsync files and directories at each durability point (off only for tests/benchmarks). */
  fsync: boolean;
  /** hasRoom() is false once the file system is this full (percent of blocks used). */
  highWaterPercent: number;
  /** hasRoom() is false when fewer MB than this are available to us. */
  minFreeMB: number;
}

export interface QuarantineInfo {
  id: string;
  stage: string;
  code: string;
  reason: string;
  at: string;
  bytes: number;
}

export type SpoolErrorCode = 'NOT_FOUND' | 'WRITER_CLOSED';

export class SpoolError extends Error {
  constructor(readonly code: SpoolErrorCode, message: string) {
    super(message);
    this.name = 'SpoolError';
  }
}
