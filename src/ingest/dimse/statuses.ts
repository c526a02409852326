/**
 * Every number the DIMSE ingest puts on the wire, named once (PS3.7 Annex C, PS3.8 9.3).
 * Nowhere else in src/ingest/dimse is a status, reject code or result written as a literal.
 */

/** DIMSE status codes (PS3.7 C.4.2 for C-STORE, C.3 for the general ones). */
export const DimseStatus = Object.freeze({
  /** 0000: the instance is durable in the spool. */
  Success: 0x0000,
  /** 0122: SOP class not supported (data on a context we did not accept, or a class mismatch). */
  SopClassNotSupported: 0x0122,
  /** A700: refused, out of resources (spool full, or a transient spool error: the sender retries). */
  OutOfResources: 0xa700,
  /** C000: error, cannot understand (the bytes are not a readable instance; it is quarantined). */
  CannotUnderstand: 0xc000,
} as const);
export type DimseStatusCode = (typeof DimseStatus)[keyof typeof DimseStatus];

/** A-ASSOCIATE-RJ Result field (PS3.8 Table 9-21). */
export const RejectResult = Object.freeze({ Permanent: 1, Transient: 2 } as const);

/** A-ASSOCIATE-RJ Source field. */
export const RejectSource = Object.freeze({
  ServiceUser: 1,
  ServiceProviderAcse: 2,
  ServiceProviderPresentation: 3,
} as const);

/** A-ASSOCIATE-RJ Reason/Diag. field; its meaning depends on the source. */
export const RejectReason = Object.freeze({
  /** Source 1 (service user). */
  NoReasonGiven: 1,
  /** Source 1 (service user). */
  CallingAeNotRecognized: 3,
  /** Source 1 (service user). */
  CalledAeNotRecognized: 7,
  /** Source 3 (service provider, presentation related). */
  TemporaryCongestion: 1,
  /** Source 3 (service provider, presentation related). */
  LocalLimitExceeded: 2,
} as const);

/** Presentation context result/reason in the A-ASSOCIATE-AC (PS3.8 9.3.3.2). */
export const ContextResult = Object.freeze({
  Accept: 0,
  UserRejection: 1,
  NoReason: 2,
  AbstractSyntaxNotSupported: 3,
  TransferSyntaxesNotSupported: 4,
} as const);
export type ContextResultCode = (typeof ContextResult)[keyof typeof ContextResult];

/** Verification SOP Class (C-ECHO). */
export const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';

/** How one C-STORE ended, before it becomes a status. */
export type StoreOutcome =
  | 'stored'
  | 'quarantined'
  | 'no-room'
  | 'sink-error'
  | 'context-not-accepted'
  | 'no-dataset';

/** The one place a store outcome becomes a DIMSE status. */
export function statusForOutcome(outcome: StoreOutcome): DimseStatusCode {
  switch (outcome) {
    case 'stored':
      return DimseStatus.Success;
    case 'quarantined':
    case 'no-dataset':
      return DimseStatus.CannotUnderstand;
    case 'no-room':
    case 'sink-error':
      return DimseStatus.OutOfResources;
    case 'context-not-accepted':
      return DimseStatus.SopClassNotSupported;
  }
}

/** "0xA700"-style rendering for logs, events and test messages. */
export function formatStatus(status: number): string {
  return `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
}
