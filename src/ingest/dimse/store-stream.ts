import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Dataset } from 'dcmjs-dimse';
import { encodeFileMeta } from '../../dicom/meta';
import { StoreOutcome } from './statuses';
import type { CommitResult, IngestSink, ReceiveMeta, SpoolWriter } from './types';

/**
 * One C-STORE data set on its way from the wire to the sink. dcmjs-dimse writes every received
 * PDV value into this stream (Scp.createStoreWritableStream); each chunk goes to the spool
 * writer as is, so nothing is ever parsed or naturalized here.
 *
 * Nothing in this class throws: a refusal (no room, context not accepted) or a sink error is
 * remembered, the remaining PDVs are drained and dropped, and finish() reports the outcome.
 */

export interface StoreTarget {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** The PDVs came on an accepted presentation context whose abstract syntax is the request's SOP class. */
  contextAccepted: boolean;
}

export interface StoreResult {
  outcome: StoreOutcome;
  /** Data set bytes received on the wire (File Meta not included). */
  bytes: number;
  commit?: CommitResult;
  /** Why the sink failed (sink-error only); for logs, never sent to the peer. */
  error?: unknown;
}

/**
 * The write() return value must never be false: dcmjs-dimse would then await a 'drain' and let
 * later PDUs be processed concurrently. Writes are synchronous, so nothing is ever buffered.
 */
const NEVER_FULL = Number.MAX_SAFE_INTEGER;

type Refusal = Extract<StoreOutcome, 'no-room' | 'sink-error' | 'context-not-accepted'>;

export class StoreStream extends Writable {
  #writer: SpoolWriter | undefined;
  #refusal: Refusal | undefined;
  #error: unknown;
  #received = 0;
  /** Set once commit() or abort() has been called on the writer. */
  #closing: Promise<unknown> | undefined;

  constructor(sink: IngestSink, readonly meta: ReceiveMeta, readonly target: StoreTarget) {
    super({ highWaterMark: NEVER_FULL, decodeStrings: false });
    if (!target.contextAccepted) {
      this.#refusal = 'context-not-accepted';
      return;
    }
    let room = false;
    try {
      room = sink.hasRoom();
    } catch (err) {
      this.#error = err;
    }
    if (!room) {
      this.#refusal = this.#error === undefined ? 'no-room' : 'sink-error';
      return;
    }
    try {
      const prefix = encodeFileMeta({
        sopClassUid: target.sopClassUid,
        sopInstanceUid: target.sopInstanceUid,
        transferSyntaxUid: target.transferSyntaxUid,
      });
      this.#writer = sink.openWriter(meta, prefix);
    } catch (err) {
      this.#fail(err);
    }
  }

  /** Data set bytes received so far. */
  get receivedBytes(): number {
    return this.#received;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#received += chunk.length;
    if (this.#writer && !this.#refusal) {
      try {
        this.#writer.write(chunk);
      } catch (err) {
        this.#fail(err);
      }
    }
    callback();
  }

  /**
   * Called once the last PDV is in: commits (or drops) what was written. Never rejects.
   * Only a resolved commit() can give 'stored'.
   */
  async finish(): Promise<StoreResult> {
    try {
      if (!this.writableFinished) await finished(this);
    } catch (err) {
      this.#fail(err);
    }
    const bytes = this.#received;
    const writer = this.#writer;
    if (this.#refusal || !writer) {
      await this.#abort();
      return { outcome: this.#refusal ?? 'sink-error', bytes, error: this.#error };
    }
    if (this.#closing) return { outcome: 'sink-error', bytes, error: new Error('store already closed') };
    const committing = writer.commit();
    this.#closing = committing.catch(() => undefined);
    try {
      const commit = await committing;
      return { outcome: commit.status === 'stored' ? 'stored' : 'quarantined', bytes, commit };
    } catch (err) {
      // The writer may hold a half-written temp file: drop it (a no-op if it already did).
      await writer.abort().catch(() => undefined);
      return { outcome: 'sink-error', bytes, error: err };
    }
  }

  /** The association ended before the C-STORE completed: drop what was written. Never rejects. */
  discard(): Promise<void> {
    if (!this.destroyed) this.destroy();
    return this.#abort();
  }

  #fail(err: unknown): void {
    if (!this.#refusal) {
      this.#refusal = 'sink-error';
      this.#error = err;
    }
  }

  async #abort(): Promise<void> {
    if (this.#closing) {
      await this.#closing;
      return;
    }
    const writer = this.#writer;
    if (!writer) return;
    this.#closing = Promise.resolve().then(() => writer.abort()).catch(() => undefined);
    await this.#closing;
  }
}

/**
 * What the Scp's cStoreRequest handler receives as the request's data set: an empty dcmjs-dimse
 * Dataset (nothing naturalized) that points back to the stream holding the real bytes.
 */
export class ReceivedDataset extends Dataset {
  constructor(readonly store: StoreStream) {
    super({}, store.target.transferSyntaxUid);
  }
}
