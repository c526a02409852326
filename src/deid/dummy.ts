/**
 * Dummy values for action D: non-empty, valid for the VR, and carrying nothing of the input.
 * UIDs are not dummied here: a D on a UI element is remapped like U so references still resolve.
 */
const TEXT = 'ANONYMIZED';
const STRING_DUMMIES: Record<string, string> = {
  AE: 'ANONYMIZED',
  AS: '000D',
  CS: TEXT,
  DA: '19000101',
  DS: '0',
  DT: '19000101000000',
  IS: '0',
  LO: TEXT,
  LT: TEXT,
  PN: TEXT,
  SH: TEXT,
  ST: TEXT,
  TM: '000000',
  UC: TEXT,
  UR: 'urn:anonymized',
  UT: TEXT,
};
const BINARY_SIZES: Record<string, number> = { AT: 4, FD: 8, FL: 4, OB: 2, OD: 8, OF: 4, OL: 4, OV: 8, OW: 2, SL: 4, SS: 2, SV: 8, UL: 4, UN: 2, US: 2, UV: 8 };

/** The dummy string for a string VR, or undefined for binary VRs. */
export const dummyString = (vr: string): string | undefined => STRING_DUMMIES[vr];

/** Zero bytes of the VR's size for binary VRs. */
export const dummyBinary = (vr: string): Buffer => Buffer.alloc(BINARY_SIZES[vr] ?? 2);

/** Values the engine itself writes; an input holding them is not a leak when they come back. */
export const GENERATED_WORDS: ReadonlySet<string> = new Set(['anonymized', 'anonymous', 'urn:anonymized']);
