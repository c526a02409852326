import { tagForKeyword } from '../dicom/dictionary';
import { Tag, T } from '../dicom/tags';
import { Action, RequiredAttribute, Rules } from './rules';

/**
 * The pixel-only keep-list: only what is needed to interpret and place the pixels survives.
 * Each entry is a keyword and what to do with it; a nested list is a sequence whose items keep
 * only the listed attributes. Everything absent (private tags included) is removed.
 */
type Spec = Action | { items: KeepList };
interface KeepList {
  [keyword: string]: Spec;
}

const GEOMETRY_ITEMS: Record<string, KeepList> = {
  PixelMeasuresSequence: { PixelSpacing: 'keep', SliceThickness: 'keep', SpacingBetweenSlices: 'keep' },
  PlanePositionSequence: { ImagePositionPatient: 'keep' },
  PlaneOrientationSequence: { ImageOrientationPatient: 'keep' },
  PixelValueTransformationSequence: { RescaleSlope: 'keep', RescaleIntercept: 'keep', RescaleType: 'keep' },
  FrameVOILUTSequence: { WindowCenter: 'keep', WindowWidth: 'keep', VOILUTFunction: 'keep' },
  // Frame Content without its dates and free-text stack ID.
  FrameContentSequence: { InStackPositionNumber: 'keep', TemporalPositionIndex: 'keep', DimensionIndexValues: 'keep' },
};
const FUNCTIONAL_GROUP_ITEM: KeepList = Object.fromEntries(
  Object.entries(GEOMETRY_ITEMS).map(([k, v]) => [k, { items: v }]),
);
const LUT_ITEM: KeepList = { LUTDescriptor: 'keep', LUTData: 'keep', ModalityLUTType: 'keep' };

const TOP_LEVEL: KeepList = {
  SOPClassUID: 'keep',
  SOPInstanceUID: 'uid',
  StudyInstanceUID: 'uid',
  SeriesInstanceUID: 'uid',
  FrameOfReferenceUID: 'uid',
  Modality: 'keep',
  SeriesNumber: 'keep',
  InstanceNumber: 'keep',
  PatientID: 'patient-id',
  PatientName: 'patient-name',
  // Type 2 attributes kept present, and empty, so the object stays a valid IOD.
  StudyDate: 'empty',
  StudyTime: 'empty',
  ReferringPhysicianName: 'empty',
  StudyID: 'empty',
  AccessionNumber: 'empty',
  PatientBirthDate: 'empty',
  PatientSex: 'empty',
  // IOD completion: Type 1 coded values and Type 2 attributes of the common image modules,
  // so the object stays valid. Codes carry no identity; Type 2 values are emptied.
  ImageType: 'keep',
  ScanningSequence: 'keep',
  SequenceVariant: 'keep',
  Manufacturer: 'empty',
  PositionReferenceIndicator: 'empty',
  PatientPosition: 'empty',
  KVP: 'empty',
  AcquisitionNumber: 'empty',
  ScanOptions: 'empty',
  MRAcquisitionType: 'empty',
  EchoTime: 'empty',
  EchoTrainLength: 'empty',
  RepetitionTime: 'empty',
  Laterality: 'empty',
  BodyPartExamined: 'keep',
  ImageLaterality: 'keep',
  PatientOrientation: 'keep',
  ConversionType: 'keep',
  // Image Pixel module.
  SamplesPerPixel: 'keep',
  PhotometricInterpretation: 'keep',
  Rows: 'keep',
  Columns: 'keep',
  BitsAllocated: 'keep',
  BitsStored: 'keep',
  HighBit: 'keep',
  PixelRepresentation: 'keep',
  PlanarConfiguration: 'keep',
  PixelAspectRatio: 'keep',
  SmallestImagePixelValue: 'keep',
  LargestImagePixelValue: 'keep',
  PixelPaddingValue: 'keep',
  PixelPaddingRangeLimit: 'keep',
  RedPaletteColorLookupTableDescriptor: 'keep',
  GreenPaletteColorLookupTableDescriptor: 'keep',
  BluePaletteColorLookupTableDescriptor: 'keep',
  RedPaletteColorLookupTableData: 'keep',
  GreenPaletteColorLookupTableData: 'keep',
  BluePaletteColorLookupTableData: 'keep',
  SegmentedRedPaletteColorLookupTableData: 'keep',
  SegmentedGreenPaletteColorLookupTableData: 'keep',
  SegmentedBluePaletteColorLookupTableData: 'keep',
  PaletteColorLookupTableUID: 'uid',
  ICCProfile: 'keep',
  PixelData: 'keep',
  FloatPixelData: 'keep',
  DoubleFloatPixelData: 'keep',
  // Frames.
  NumberOfFrames: 'keep',
  FrameIncrementPointer: 'keep',
  FrameTime: 'keep',
  FrameTimeVector: 'keep',
  // Vectors that FrameIncrementPointer may point at (NM multi-frame indexing).
  EnergyWindowVector: 'keep',
  DetectorVector: 'keep',
  PhaseVector: 'keep',
  RotationVector: 'keep',
  RRIntervalVector: 'keep',
  TimeSlotVector: 'keep',
  SliceVector: 'keep',
  AngularViewVector: 'keep',
  TimeSliceVector: 'keep',
  // Pixel value transformations.
  RescaleSlope: 'keep',
  RescaleIntercept: 'keep',
  RescaleType: 'keep',
  ModalityLUTSequence: { items: LUT_ITEM },
  WindowCenter: 'keep',
  WindowWidth: 'keep',
  VOILUTFunction: 'keep',
  VOILUTSequence: { items: LUT_ITEM },
  // Geometry.
  PixelSpacing: 'keep',
  ImagerPixelSpacing: 'keep',
  SliceThickness: 'keep',
  SpacingBetweenSlices: 'keep',
  ImagePositionPatient: 'keep',
  ImageOrientationPatient: 'keep',
  // Lossy compression history (a research user must know it).
  LossyImageCompression: 'keep',
  LossyImageCompressionRatio: 'keep',
  LossyImageCompressionMethod: 'keep',
  // Multi-frame functional groups, geometry and pixel-value macros only.
  SharedFunctionalGroupsSequence: { items: FUNCTIONAL_GROUP_ITEM },
  PerFrameFunctionalGroupsSequence: { items: FUNCTIONAL_GROUP_ITEM },
  DimensionOrganizationSequence: { items: { DimensionOrganizationUID: 'uid' } },
  DimensionIndexSequence: { items: { DimensionIndexPointer: 'keep', FunctionalGroupPointer: 'keep', DimensionOrganizationUID: 'uid' } },
};

type CompiledList = Map<Tag, Action | CompiledList>;

function compile(list: KeepList): CompiledList {
  const out: CompiledList = new Map();
  for (const [keyword, spec] of Object.entries(list)) {
    const tag = tagForKeyword(keyword);
    if (tag === undefined) throw new Error(`pixel-only keep-list: unknown keyword ${keyword}`);
    out.set(tag, typeof spec === 'object' && 'items' in spec ? compile(spec.items) : spec);
  }
  return out;
}

const REQUIRED: RequiredAttribute[] = [
  { tag: T.PatientName, vr: 'PN', action: 'patient-name' },
  { tag: T.PatientID, vr: 'LO', action: 'patient-id' },
  { tag: T.PatientBirthDate, vr: 'DA', action: 'empty' },
  { tag: T.PatientSex, vr: 'CS', action: 'empty' },
  { tag: T.StudyDate, vr: 'DA', action: 'empty' },
  { tag: T.StudyTime, vr: 'TM', action: 'empty' },
  { tag: T.ReferringPhysicianName, vr: 'PN', action: 'empty' },
  { tag: T.StudyID, vr: 'SH', action: 'empty' },
  { tag: T.AccessionNumber, vr: 'SH', action: 'empty' },
];

function rulesFor(list: CompiledList, top: boolean): Rules {
  return {
    action(el) {
      const spec = list.get(el.tag);
      if (spec === undefined) return 'remove';
      return spec instanceof Map ? 'keep' : spec;
    },
    itemRules(tag) {
      const spec = list.get(tag);
      return rulesFor(spec instanceof Map ? spec : new Map(), false);
    },
    required: () => (top ? REQUIRED : []),
  };
}

let compiled: CompiledList | undefined;
export function pixelOnlyRules(): Rules {
  compiled ??= compile(TOP_LEVEL);
  return rulesFor(compiled, true);
}
