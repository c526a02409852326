import { inspectHead } from '../ingest/dicomweb/part-header';
import type { ReceiveMeta, SpoolWriter } from '../spool/types';
import { InstanceWriter, RetrieveSink } from './types';

/** The identifiers the head of a retrieved instance gave (undefined when it is unreadable). */
export interface Arrived {
  spoolId: string;
  sopInstanceUid: string | undefined;
  bytes: number;
  quarantinedCode?: string;
}

/** Bytes kept to read the File Meta group's SOP Instance UID (the rest streams to disk). */
const HEAD_BYTES = 64 << 10;

export interface SinkSpool {
  openWriter(meta: ReceiveMeta): SpoolWriter;
}

/**
 * Retrieved instances of one export job into the spool: each one is a spool entry tagged with
 * the job, and `onArrived` hears of it once it is durable (so the job can skip it on resume).
 */
export function spoolSink(spool: SinkSpool, job: string, onArrived: (a: Arrived) => void): RetrieveSink {
  return {
    open(): InstanceWriter {
      const writer = spool.openWriter({ source: 'export', job, receivedAt: new Date().toISOString() });
      const head: Buffer[] = [];
      let headBytes = 0;
      return {
        write(chunk: Buffer): void {
          if (headBytes < HEAD_BYTES) {
            const part = Buffer.from(chunk.subarray(0, HEAD_BYTES - headBytes)); // a copy: chunks are views of reused buffers
            head.push(part);
            headBytes += part.length;
          }
          writer.write(chunk);
        },
        async commit(): Promise<'stored' | 'quarantined'> {
          const result = await writer.commit();
          const ids = inspectHead(Buffer.concat(head), writer.bytes <= HEAD_BYTES).ids;
          onArrived({
            spoolId: result.entry.id,
            sopInstanceUid: ids.sopInstanceUid,
            bytes: writer.bytes,
            ...(result.status === 'quarantined' ? { quarantinedCode: result.code } : {}),
          });
          return result.status;
        },
        abort: () => writer.abort(),
      };
    },
  };
}
