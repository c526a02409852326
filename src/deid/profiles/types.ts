// Types for the PS3.15 Annex E profile tables (generated data lives in *.generated.ts).

/** Action codes of PS3.15 Table E.1-1a, as they appear in Table E.1-1. */
export const ACTION_CODES = ['X', 'Z', 'D', 'U', 'K', 'C', 'X/Z', 'X/D', 'Z/D', 'X/Z/D', 'X/Z/U*'] as const;
export type ActionCode = typeof ACTION_CODES[number];

/** The ten option columns of Table E.1-1, in the standard's column order. */
export const OPTION_NAMES = [
  'retainSafePrivate',
  'retainUIDs',
  'retainDeviceIdentity',
  'retainInstitutionIdentity',
  'retainPatientCharacteristics',
  'retainLongFullDates',
  'retainLongModifiedDates',
  'cleanDescriptors',
  'cleanStructuredContent',
  'cleanGraphics',
] as const;
export type OptionName = typeof OPTION_NAMES[number];

/** One row of Table E.1-1. */
export interface ProfileRow {
  /** As printed, e.g. "(0010,0010)", "(60xx,3000)", "(gggg,eeee) where gggg is odd". */
  tag: string;
  /** PS3.6 keyword; null for (50xx,xxxx) and the private-attributes row. */
  keyword: string | null;
  name: string;
  retired: boolean;
  basic: ActionCode;
  /** Only filled option cells; when the option is in effect its code replaces `basic`. */
  options: Partial<Record<OptionName, 'K' | 'C'>>;
}

/** One row of Table E.3.10-1: element (group, xx<elementByte>) in the block reserved by `creator`. */
export interface SafePrivateRow {
  group: number;
  creator: string;
  /** The 'ee' low byte of the element number. */
  elementByte: number;
  vr: string | null;
  vm: string | null;
  meaning: string | null;
}

export interface CodedConcept {
  value: string;
  scheme: 'DCM';
  meaning: string;
}

const dcm = (value: string, meaning: string): CodedConcept => ({ value, scheme: 'DCM', meaning });

/** PS3.16 CID 7050 codes for the De-identification Method Code Sequence (0012,0064). */
export const METHOD_CODES: Readonly<Record<'basic' | OptionName, CodedConcept>> = {
  basic: dcm('113100', 'Basic Application Confidentiality Profile'),
  retainSafePrivate: dcm('113111', 'Retain Safe Private Option'),
  retainUIDs: dcm('113110', 'Retain UIDs Option'),
  retainDeviceIdentity: dcm('113109', 'Retain Device Identity Option'),
  retainInstitutionIdentity: dcm('113112', 'Retain Institution Identity Option'),
  retainPatientCharacteristics: dcm('113108', 'Retain Patient Characteristics Option'),
  retainLongFullDates: dcm('113106', 'Retain Longitudinal Temporal Information Full Dates Option'),
  retainLongModifiedDates: dcm('113107', 'Retain Longitudinal Temporal Information Modified Dates Option'),
  cleanDescriptors: dcm('113105', 'Clean Descriptors Option'),
  cleanStructuredContent: dcm('113104', 'Clean Structured Content Option'),
  cleanGraphics: dcm('113103', 'Clean Graphics Option'),
};

// These two options have no column in Table E.1-1 (they act on pixels, not attributes).
export const CLEAN_PIXEL_DATA: CodedConcept = dcm('113101', 'Clean Pixel Data Option');
export const CLEAN_RECOGNIZABLE_VISUAL_FEATURES: CodedConcept = dcm('113102', 'Clean Recognizable Visual Features Option');
