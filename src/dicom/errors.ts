/**
 * Every way an input can be unreadable has a code, so callers (CLI summary, DIMSE status,
 * HTTP status, quarantine reason) can branch on it without parsing messages.
 */
export type DicomErrorCode =
  | 'NOT_DICOM'
  | 'TRUNCATED'
  | 'BAD_LENGTH'
  | 'BAD_VR'
  | 'BAD_ITEM'
  | 'NESTING_TOO_DEEP'
  | 'VALUE_TOO_LONG'
  | 'UNSUPPORTED_TRANSFER_SYNTAX'
  | 'BAD_DEFLATE'
  | 'MISSING_ATTRIBUTE';

export class DicomParseError extends Error {
  constructor(
    readonly code: DicomErrorCode,
    message: string,
    /** Byte offset in the (inflated) stream where the problem was found. */
    readonly offset?: number,
  ) {
    super(offset === undefined ? message : `${message} (at byte ${offset})`);
    this.name = 'DicomParseError';
  }
}
