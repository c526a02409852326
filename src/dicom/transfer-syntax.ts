import { DicomParseError } from './errors';

export interface Syntax {
  explicit: boolean;
  little: boolean;
}

export interface TransferSyntax extends Syntax {
  uid: string;
  deflated: boolean;
  /** Pixel data is encapsulated (fragments in items). */
  encapsulated: boolean;
}

export const IMPLICIT_LE: Syntax = Object.freeze({ explicit: false, little: true });
export const EXPLICIT_LE: Syntax = Object.freeze({ explicit: true, little: true });
export const EXPLICIT_BE: Syntax = Object.freeze({ explicit: true, little: false });

export const TS = {
  ImplicitLittle: '1.2.840.10008.1.2',
  ExplicitLittle: '1.2.840.10008.1.2.1',
  DeflatedExplicitLittle: '1.2.840.10008.1.2.1.99',
  ExplicitBig: '1.2.840.10008.1.2.2',
} as const;

/**
 * Every transfer syntax that is not one of the four native ones is encapsulated with an
 * explicit VR little endian dataset (PS3.5 A.4), so unknown compressed syntaxes still pass
 * through untouched.
 */
export function transferSyntaxOf(uid: string): TransferSyntax {
  switch (uid) {
    case TS.ImplicitLittle:
      return { uid, ...IMPLICIT_LE, deflated: false, encapsulated: false };
    case TS.ExplicitLittle:
      return { uid, ...EXPLICIT_LE, deflated: false, encapsulated: false };
    case TS.DeflatedExplicitLittle:
      return { uid, ...EXPLICIT_LE, deflated: true, encapsulated: false };
    case TS.ExplicitBig:
      return { uid, ...EXPLICIT_BE, deflated: false, encapsulated: false };
    default:
      if (!/^[0-9]+(\.[0-9]+)+$/.test(uid)) {
        throw new DicomParseError('UNSUPPORTED_TRANSFER_SYNTAX', `transfer syntax UID is not a UID: ${JSON.stringify(uid.slice(0, 64))}`);
      }
      // JPIP-referenced syntaxes have no pixel data and a native dataset; both are explicit LE.
      return { uid, ...EXPLICIT_LE, deflated: uid === '1.2.840.10008.1.2.4.95', encapsulated: true };
  }
}
