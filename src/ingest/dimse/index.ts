export { startDimseServer, CONNECTION_HEADROOM } from './server';
export type { DimseServer } from './server';
export type { CommitResult, IngestEvent, IngestEventListener, IngestSink, ReceiveMeta, SpoolWriter } from './types';
export { DimseStatus, RejectReason, RejectResult, RejectSource, formatStatus } from './statuses';
