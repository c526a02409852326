/** Tags are uint32 numbers: (group << 16 | element) >>> 0. */
export type Tag = number;

export const tagOf = (group: number, element: number): Tag => ((group << 16) | element) >>> 0;
export const groupOf = (tag: Tag): number => tag >>> 16;
export const elementOf = (tag: Tag): number => tag & 0xffff;
export const isPrivateTag = (tag: Tag): boolean => (groupOf(tag) & 1) === 1;
/** Private creator elements reserve blocks: (gggg,0010)-(gggg,00FF). */
export const isPrivateCreator = (tag: Tag): boolean =>
  isPrivateTag(tag) && elementOf(tag) >= 0x10 && elementOf(tag) <= 0xff;
export const isGroupLength = (tag: Tag): boolean => elementOf(tag) === 0;

export function formatTag(tag: Tag): string {
  const hex = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${hex.slice(0, 4)},${hex.slice(4)})`;
}

/** Accepts "(0010,0010)", "0010,0010" or "00100010". */
export function parseTagString(text: string): Tag | undefined {
  const m = /^\(?([0-9a-fA-F]{4}),?([0-9a-fA-F]{4})\)?$/.exec(text.trim());
  return m ? tagOf(parseInt(m[1], 16), parseInt(m[2], 16)) : undefined;
}

export const ITEM = 0xfffee000;
export const ITEM_DELIMITATION = 0xfffee00d;
export const SEQUENCE_DELIMITATION = 0xfffee0dd;
export const UNDEFINED_LENGTH = 0xffffffff;

/** Tags the engine itself reads or writes. */
export const T = {
  TransferSyntaxUID: 0x00020010,
  MediaStorageSOPClassUID: 0x00020002,
  MediaStorageSOPInstanceUID: 0x00020003,
  SpecificCharacterSet: 0x00080005,
  ImageType: 0x00080008,
  SOPClassUID: 0x00080016,
  SOPInstanceUID: 0x00080018,
  StudyDate: 0x00080020,
  StudyTime: 0x00080030,
  AccessionNumber: 0x00080050,
  Modality: 0x00080060,
  Manufacturer: 0x00080070,
  InstitutionName: 0x00080080,
  InstitutionAddress: 0x00080081,
  ReferringPhysicianName: 0x00080090,
  StationName: 0x00081010,
  PatientName: 0x00100010,
  PatientID: 0x00100020,
  PatientBirthDate: 0x00100030,
  PatientSex: 0x00100040,
  OtherPatientIDs: 0x00101000,
  OtherPatientNames: 0x00101001,
  PatientBirthName: 0x00101005,
  PatientAge: 0x00101010,
  PatientAddress: 0x00101040,
  PatientMotherBirthName: 0x00101060,
  StudyInstanceUID: 0x0020000d,
  SeriesInstanceUID: 0x0020000e,
  StudyID: 0x00200010,
  FrameOfReferenceUID: 0x00200052,
  PatientIdentityRemoved: 0x00120062,
  DeidentificationMethod: 0x00120063,
  DeidentificationMethodCodeSequence: 0x00120064,
  CodeValue: 0x00080100,
  CodingSchemeDesignator: 0x00080102,
  CodeMeaning: 0x00080104,
  LongitudinalTemporalInformationModified: 0x00280303,
  BurnedInAnnotation: 0x00280301,
  RecognizableVisualFeatures: 0x00280302,
  PixelData: 0x7fe00010,
  FloatPixelData: 0x7fe00008,
  DoubleFloatPixelData: 0x7fe00009,
} as const;
