/**
 * Benchmark inputs, written with the independent test DICOM builder (never with the engine):
 *  - a corpus of CT-like 512x512x16-bit instances with realistic, varied headers (~100
 *    attributes, sequences, private blocks), a few patients x studies x series;
 *  - one large Enhanced CT multi-frame instance, streamed to disk frame by frame.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { El, encodeFile, el, seq, TS } from '../test/support/dicom-builder';

/** Bump when the generator changes so cached corpora are rebuilt. */
export const CORPUS_VERSION = 3;

const ROOT = '1.2.826.0.1.3680043.9.7777.42'; // test-only UID root (same arc as the builder's)
/** Root of a warm-up corpus: the same kind of images under UIDs no timed corpus uses. */
export const WARMUP_ROOT = `${ROOT}.5`;

interface Patient {
  name: string;
  id: string;
  birth: string;
  sex: string;
  age: string;
  address: string;
  phone: string;
  size: string;
  weight: string;
  other: string;
}

const PATIENTS: Patient[] = [
  { name: 'DOE^JANE^M', id: 'MRN0048213', birth: '19580312', sex: 'F', age: '066Y', address: '12 Elm Street^^Springfield^IL^62704', phone: '555-0142', size: '1.64', weight: '61', other: 'HOSP2-99812' },
  { name: 'ROE^RICHARD^A^DR', id: 'MRN0091177', birth: '19711130', sex: 'M', age: '052Y', address: '9 Harbour Road^^Portsmouth^^PO1 2AB', phone: '555-0199', size: '1.81', weight: '88.5', other: 'HOSP2-10443' },
  { name: 'MUSTERMANN^ERIKA', id: 'MRN0000731', birth: '19890705', sex: 'F', age: '035Y', address: 'Hauptstr. 5^^Berlin^^10115', phone: '030-5550731', size: '1.70', weight: '66', other: 'HOSP2-55510' },
];

const STUDIES = [
  { desc: 'CT CHEST W/O CONTRAST', proc: ['71250', 'CT THORAX WITHOUT CONTRAST'], body: 'CHEST', region: ['T-D3000', 'Chest'] },
  { desc: 'CT ABDOMEN PELVIS W CONTRAST', proc: ['74177', 'CT ABD & PELVIS W CONTRAST'], body: 'ABDOMEN', region: ['T-D4000', 'Abdomen'] },
  { desc: 'CT HEAD W/O CONTRAST', proc: ['70450', 'CT HEAD/BRAIN W/O CONTRAST'], body: 'HEAD', region: ['T-D1100', 'Head'] },
];

const SERIES = [
  { desc: 'Axial 1.0 STND', kernel: 'STANDARD', thick: '1.0', wc: '40', ww: '400' },
  { desc: 'Axial 1.0 LUNG', kernel: 'LUNG', thick: '1.0', wc: '-600', ww: '1500' },
  { desc: 'Axial 2.5 SOFT', kernel: 'SOFT', thick: '2.5', wc: '50', ww: '350' },
];

const PHYSICIANS = ['HOUSE^GREGORY', 'QUINN^MICHAELA', 'WATSON^JOHN^H'];
const OPERATORS = ['TECH^ANNA', 'TECH^BORIS', 'TECH^CHEN'];

const ymd = (base: string, addDays: number): string => {
  const d = new Date(Date.UTC(+base.slice(0, 4), +base.slice(4, 6) - 1, +base.slice(6, 8) + addDays));
  return d.toISOString().slice(0, 10).replace(/-/g, '');
};
const hms = (seconds: number): string => {
  const s = Math.floor(seconds) % 86400;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}${pad(Math.floor(s / 60) % 60)}${pad(s % 60)}.${String(Math.round((seconds % 1) * 1e6)).padStart(6, '0')}`;
};

/** What distinguishes one instance of the corpus. */
export interface Slot {
  patient: number;
  study: number;
  series: number;
  slice: number;
  /** Global index (unique). */
  index: number;
  /** UID root of the corpus (another root gives the same images under other UIDs); default ROOT. */
  root?: string;
}

/** 3 patients x (3, 3, 2) studies x 3 series, `count` instances spread over the 24 series. */
export function layout(count: number, root = ROOT): Slot[] {
  const series: { patient: number; study: number; series: number }[] = [];
  const studiesPer = [3, 3, 2];
  PATIENTS.forEach((_, p) => {
    for (let s = 0; s < studiesPer[p]; s++) for (let se = 0; se < SERIES.length; se++) series.push({ patient: p, study: s, series: se });
  });
  const slots: Slot[] = [];
  series.forEach((sr, i) => {
    const n = Math.floor(count / series.length) + (i < count % series.length ? 1 : 0);
    for (let k = 0; k < n; k++) slots.push({ ...sr, slice: k, index: slots.length, root });
  });
  return slots;
}

function uids(slot: Slot): { study: string; series: string; sop: string; frame: string; ppsId: string } {
  const root = slot.root ?? ROOT;
  const st = `${root}.1.${slot.patient + 1}.${slot.study + 1}`;
  return {
    study: st,
    series: `${st}.${slot.series + 1}`,
    sop: `${st}.${slot.series + 1}.${slot.slice + 1}.${1000 + slot.index}`,
    frame: `${st}.9`,
    ppsId: `${root}.7.${slot.patient + 1}.${slot.study + 1}`,
  };
}

/**
 * Synthetic CT slice: an ellipse of "soft tissue" with a bright "spine" and two dark "lungs"
 * whose size depends on the slice, plus noise, so every instance has different pixels.
 * 12 bits stored, values < 0x1000.
 */
export function ctSlice(rows: number, cols: number, slot: Slot): Buffer {
  const px = new Uint16Array(rows * cols);
  const z = slot.slice / 50;
  const ax = cols * (0.38 + 0.03 * Math.sin(z + slot.patient));
  const ay = rows * (0.28 + 0.02 * Math.cos(z));
  const lung = 0.35 + 0.15 * Math.sin(z * 1.3);
  let seed = (slot.index * 2654435761 + 12345) >>> 0;
  const cx = cols / 2;
  const cy = rows / 2;
  for (let y = 0; y < rows; y++) {
    const dy = (y - cy) / ay;
    for (let x = 0; x < cols; x++) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      const noise = (seed >>> 27) - 16;
      const dx = (x - cx) / ax;
      const r2 = dx * dx + dy * dy;
      let v = 24; // air (-1000 HU with intercept -1024)
      if (r2 < 1) {
        v = 1064 + noise; // soft tissue
        const lx = Math.abs(dx) - 0.45;
        if (lx * lx / (lung * lung) + (dy * dy) / 0.5 < 0.25) v = 224 + noise; // lungs
        const sx = dx;
        const sy = dy - 0.6;
        if (sx * sx + sy * sy < 0.02) v = 2200 + 4 * noise; // spine
      }
      px[y * cols + x] = v & 0x0fff;
    }
  }
  return Buffer.from(px.buffer, px.byteOffset, px.byteLength);
}

const priv = (tag: number, vr: string, value: El['value']): El => ({ tag, vr, value });

/** The ~100-attribute header of one corpus instance (without Pixel Data). */
export function ctHeader(slot: Slot, rows = 512, cols = 512): El[] {
  const p = PATIENTS[slot.patient];
  const studyKind = STUDIES[(slot.patient + slot.study) % STUDIES.length];
  const se = SERIES[slot.series];
  const u = uids(slot);
  const studyDate = ymd('20210104', slot.patient * 97 + slot.study * 173);
  const studyStart = 8 * 3600 + slot.patient * 1800 + slot.study * 600;
  const seriesStart = studyStart + 120 + slot.series * 45;
  const acqTime = seriesStart + slot.slice * 0.35;
  const thick = +se.thick;
  const zPos = -50 - slot.slice * thick;
  const accession = `ACC${studyDate.slice(2)}${slot.patient}${slot.study}`;
  const physician = PHYSICIANS[(slot.patient + slot.study) % PHYSICIANS.length];
  const operator = OPERATORS[(slot.study + slot.series) % OPERATORS.length];
  const code = (value: string, scheme: string, meaning: string): El[] => [
    el('CodeValue', value), el('CodingSchemeDesignator', scheme), el('CodeMeaning', meaning),
  ];
  return [
    el('SpecificCharacterSet', 'ISO_IR 100'),
    el('ImageType', slot.slice === 0 && slot.series === 0 ? 'ORIGINAL\\PRIMARY\\LOCALIZER' : 'ORIGINAL\\PRIMARY\\AXIAL'),
    el('InstanceCreationDate', studyDate),
    el('InstanceCreationTime', hms(acqTime + 30)),
    el('InstanceCreatorUID', `${ROOT}.99`),
    el('SOPClassUID', '1.2.840.10008.5.1.4.1.1.2'),
    el('SOPInstanceUID', u.sop),
    el('StudyDate', studyDate),
    el('SeriesDate', studyDate),
    el('AcquisitionDate', studyDate),
    el('ContentDate', studyDate),
    el('StudyTime', hms(studyStart)),
    el('SeriesTime', hms(seriesStart)),
    el('AcquisitionTime', hms(acqTime)),
    el('ContentTime', hms(acqTime + 1.5)),
    el('AccessionNumber', accession),
    el('Modality', 'CT'),
    el('Manufacturer', 'ACME Medical Systems'),
    el('InstitutionName', 'Springfield General Hospital'),
    el('InstitutionAddress', '1 Hospital Plaza, Springfield, IL 62701'),
    el('ReferringPhysicianName', physician),
    el('ReferringPhysicianTelephoneNumbers', '555-0100'),
    el('StationName', `CTSCAN${1 + (slot.study % 2)}`),
    el('StudyDescription', studyKind.desc),
    seq('ProcedureCodeSequence', code(studyKind.proc[0], 'C4', studyKind.proc[1])),
    el('SeriesDescription', se.desc),
    el('InstitutionalDepartmentName', 'Radiology'),
    el('PerformingPhysicianName', physician),
    el('NameOfPhysiciansReadingStudy', PHYSICIANS[(slot.patient + 1) % PHYSICIANS.length]),
    el('OperatorsName', operator),
    el('ManufacturerModelName', 'Imaginarium 128'),
    seq('ReferencedPerformedProcedureStepSequence', [
      el('ReferencedSOPClassUID', '1.2.840.10008.3.1.2.3.3'), el('ReferencedSOPInstanceUID', u.ppsId),
    ]),
    ...(slot.slice > 0
      ? [seq('ReferencedImageSequence', [
        el('ReferencedSOPClassUID', '1.2.840.10008.5.1.4.1.1.2'),
        el('ReferencedSOPInstanceUID', `${u.series}.1.${1000 + slot.index - slot.slice}`),
      ])]
      : []),
    seq('AnatomicRegionSequence', code(studyKind.region[0], 'SRT', studyKind.region[1])),
    el('PatientName', p.name),
    el('PatientID', p.id),
    el('IssuerOfPatientID', 'SPRINGFIELD_GH'),
    el('PatientBirthDate', p.birth),
    el('PatientSex', p.sex),
    seq('OtherPatientIDsSequence', [el('PatientID', p.other), el('IssuerOfPatientID', 'HOSP2'), el('TypeOfPatientID', 'TEXT')]),
    el('PatientAge', p.age),
    el('PatientSize', p.size),
    el('PatientWeight', p.weight),
    el('PatientAddress', p.address),
    el('PatientTelephoneNumbers', p.phone),
    el('EthnicGroup', 'UNKNOWN'),
    el('AdditionalPatientHistory', `Follow-up, see prior exam of ${p.name.split('^')[0]}`),
    el('PregnancyStatus', [4]),
    el('PatientComments', 'Contrast allergy: none known'),
    el('ContrastBolusAgent', studyKind.body === 'ABDOMEN' ? 'IOHEXOL 350' : ''),
    el('BodyPartExamined', studyKind.body),
    el('ScanOptions', 'HELICAL MODE'),
    el('SliceThickness', se.thick),
    el('KVP', slot.patient === 1 ? '100' : '120'),
    el('DataCollectionDiameter', '500'),
    el('DeviceSerialNumber', `SN${40221 + (slot.study % 2)}`),
    el('SoftwareVersions', 'IMG128_7.2.1'),
    el('ProtocolName', `${studyKind.body} ROUTINE`),
    el('ReconstructionDiameter', String(340 + slot.patient * 20)),
    el('DistanceSourceToDetector', '1085.6'),
    el('DistanceSourceToPatient', '541'),
    el('GantryDetectorTilt', '0'),
    el('TableHeight', String(160 + slot.patient)),
    el('RotationDirection', 'CW'),
    el('ExposureTime', '500'),
    el('XRayTubeCurrent', String(180 + ((slot.slice * 7) % 90))),
    el('Exposure', String(90 + ((slot.slice * 3) % 45))),
    el('FilterType', 'BODY FILTER'),
    el('GeneratorPower', '24'),
    el('FocalSpots', '1.2'),
    el('ConvolutionKernel', se.kernel),
    el('PatientPosition', 'FFS'),
    el('RevolutionTime', [0.5]),
    el('SingleCollimationWidth', [0.625]),
    el('TotalCollimationWidth', [40]),
    el('TableSpeed', [78.75]),
    el('TableFeedPerRotation', [39.375]),
    el('SpiralPitchFactor', [0.984375]),
    el('CTDIvol', [8.5 + slot.patient]),
    el('DateOfLastCalibration', ymd(studyDate, -3)),
    el('TimeOfLastCalibration', '063000'),
    el('StudyInstanceUID', u.study),
    el('SeriesInstanceUID', u.series),
    el('StudyID', `S${slot.patient + 1}${slot.study + 1}`),
    el('SeriesNumber', String(slot.series + 2)),
    el('AcquisitionNumber', '1'),
    el('InstanceNumber', String(slot.slice + 1)),
    el('ImagePositionPatient', `-${cols * 0.35}\\-${rows * 0.35}\\${zPos}`),
    el('ImageOrientationPatient', '1\\0\\0\\0\\1\\0'),
    el('FrameOfReferenceUID', u.frame),
    el('PositionReferenceIndicator', 'SN'),
    el('SliceLocation', String(zPos)),
    el('ImageComments', `Reconstructed by ${operator.split('^')[1]}`),
    el('SamplesPerPixel', [1]),
    el('PhotometricInterpretation', 'MONOCHROME2'),
    el('Rows', [rows]),
    el('Columns', [cols]),
    el('PixelSpacing', '0.703125\\0.703125'),
    el('BitsAllocated', [16]),
    el('BitsStored', [12]),
    el('HighBit', [11]),
    el('PixelRepresentation', [0]),
    el('WindowCenter', se.wc),
    el('WindowWidth', se.ww),
    el('RescaleIntercept', '-1024'),
    el('RescaleSlope', '1'),
    el('RescaleType', 'HU'),
    el('WindowCenterWidthExplanation', 'WINDOW1'),
    el('LossyImageCompression', '00'),
    el('RequestingPhysician', physician),
    el('RequestedProcedureDescription', studyKind.desc),
    el('PerformedProcedureStepStartDate', studyDate),
    el('PerformedProcedureStepStartTime', hms(studyStart)),
    el('PerformedProcedureStepID', `PPS${slot.patient}${slot.study}`),
    el('PerformedProcedureStepDescription', studyKind.desc),
    seq('RequestAttributesSequence', [
      el('RequestedProcedureID', `RP${slot.patient}${slot.study}`),
      el('ScheduledProcedureStepID', `SPS${slot.patient}${slot.study}`),
      el('AccessionNumber', accession),
    ]),
    // Private blocks, each with its private creator.
    priv(0x00090010, 'LO', 'ACME_IDEN_01'),
    priv(0x00091001, 'LO', 'IMG128'),
    priv(0x00091002, 'SH', `CTSCAN${1 + (slot.study % 2)}`),
    priv(0x00091004, 'LO', p.name),
    priv(0x00091027, 'SL', [Math.floor(acqTime)]),
    priv(0x00190010, 'LO', 'ACME_ACQU_01'),
    priv(0x00191002, 'SL', [slot.slice]),
    priv(0x0019100f, 'DS', '1.2\\0.6'),
    priv(0x00191018, 'LO', se.kernel),
    priv(0x00191023, 'FL', [0.5, 0.625, 39.375]),
    priv(0x00191043, 'OB', crypto.createHash('sha256').update(u.sop).digest()),
    priv(0x00430010, 'LO', 'ACME_PARM_01'),
    priv(0x00431001, 'US', [slot.series]),
    priv(0x00431027, 'SH', '/1.0:1'),
    priv(0x00431031, 'DS', `${zPos}\\0`),
  ];
}

/** Part 10 bytes of corpus instance `slot` (explicit VR little endian). */
export function corpusInstance(slot: Slot, rows = 512, cols = 512): Buffer {
  const elements = [...ctHeader(slot, rows, cols), { tag: 0x7fe00010, vr: 'OW', value: ctSlice(rows, cols, slot) }];
  return encodeFile(elements, { transferSyntaxUID: TS.explicitLE });
}

export interface CorpusInfo {
  dir: string;
  files: number;
  bytes: number;
  version: number;
  /** UID root (absent in manifests written before it existed: the default root). */
  root?: string;
  generatedSeconds?: number;
}

/** The corpus under `dir`, generated once and reused while its manifest matches. */
export function ensureCorpus(dir: string, count: number, log: (s: string) => void, root = ROOT): CorpusInfo {
  const manifest = path.join(dir, '..', `${path.basename(dir)}.manifest.json`);
  try {
    const m = JSON.parse(fs.readFileSync(manifest, 'utf8')) as CorpusInfo;
    if (m.version === CORPUS_VERSION && m.files === count && (m.root ?? ROOT) === root && fs.existsSync(dir)) return m;
  } catch {
    /* absent or stale: regenerate */
  }
  fs.rmSync(dir, { recursive: true, force: true });
  log(`generating corpus of ${count} instances in ${dir} ...`);
  const t0 = Date.now();
  let bytes = 0;
  for (const slot of layout(count, root)) {
    const rel = path.join(`PAT${slot.patient + 1}`, `ST${slot.study + 1}`, `SE${slot.series + 1}`, `IM${String(slot.slice + 1).padStart(4, '0')}.dcm`);
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const buf = corpusInstance(slot);
    fs.writeFileSync(file, buf);
    bytes += buf.length;
  }
  const info: CorpusInfo = { dir, files: count, bytes, version: CORPUS_VERSION, root, generatedSeconds: (Date.now() - t0) / 1000 };
  fs.writeFileSync(manifest, JSON.stringify(info, null, 2));
  return info;
}

// ---------------------------------------------------------------- large multi-frame instance

export interface LargeInfo {
  file: string;
  bytes: number;
  frames: number;
  /** Offset and length of the Pixel Data value in the file. */
  pixelOffset: number;
  pixelLength: number;
}

/**
 * An Enhanced CT instance of `frames` 512x512x16-bit frames, written to disk in chunks: the
 * header (with per-frame functional groups) comes from the builder, then the Pixel Data element
 * header (7FE0,0010) OW with its 32-bit length, then the frames, never all in memory.
 */
export function writeLargeInstance(file: string, frames: number, rows = 512, cols = 512): LargeInfo {
  const frameBytes = rows * cols * 2;
  const pixelLength = frames * frameBytes;
  if (pixelLength > 0xfffffffe) throw new Error(`${frames} frames do not fit a 32-bit Pixel Data length`);
  const slot: Slot = { patient: 0, study: 0, series: 0, slice: 0, index: 0 };
  const base = ctHeader(slot, rows, cols).filter((e) => ![
    'ImagePositionPatient', 'SliceLocation', 'ImageOrientationPatient', 'PixelSpacing', 'SliceThickness',
    'WindowCenter', 'WindowWidth', 'RescaleIntercept', 'RescaleSlope', 'RescaleType', 'ReferencedImageSequence', 'ImageType',
  ].some((k) => e.tag === el(k, '').tag));
  const sopClass = el('SOPClassUID', '1.2.840.10008.5.1.4.1.1.2.1'); // Enhanced CT Image Storage
  const dimOrg = `${ROOT}.8.1`;
  const perFrame = Array.from({ length: frames }, (_, f) => [
    seq('FrameContentSequence', [el('DimensionIndexValues', [1, f + 1]), el('FrameAcquisitionDateTime', `20210104080${f % 10}00`), el('StackID', '1'), el('InStackPositionNumber', [f + 1])]),
    seq('PlanePositionSequence', [el('ImagePositionPatient', `-179.2\\-179.2\\${(-50 - f * 0.625).toFixed(3)}`)]),
  ]);
  const header = [
    ...base.filter((e) => e.tag !== sopClass.tag),
    sopClass,
    el('ImageType', 'ORIGINAL\\PRIMARY\\VOLUME\\NONE'),
    el('NumberOfFrames', String(frames)),
    el('ContentQualification', 'PRODUCT'),
    el('BurnedInAnnotation', 'NO'),
    seq('DimensionOrganizationSequence', [el('DimensionOrganizationUID', dimOrg)]),
    seq('DimensionIndexSequence',
      [el('DimensionOrganizationUID', dimOrg), el('DimensionIndexPointer', [0x00209056]), el('FunctionalGroupPointer', [0x00209111])],
      [el('DimensionOrganizationUID', dimOrg), el('DimensionIndexPointer', [0x00209057]), el('FunctionalGroupPointer', [0x00209111])]),
    seq('SharedFunctionalGroupsSequence', [
      seq('PixelMeasuresSequence', [el('PixelSpacing', '0.703125\\0.703125'), el('SliceThickness', '0.625')]),
      seq('PlaneOrientationSequence', [el('ImageOrientationPatient', '1\\0\\0\\0\\1\\0')]),
      seq('PixelValueTransformationSequence', [el('RescaleIntercept', '-1024'), el('RescaleSlope', '1'), el('RescaleType', 'HU')]),
      seq('FrameVOILUTSequence', [el('WindowCenter', '40'), el('WindowWidth', '400')]),
    ]),
    seq('PerFrameFunctionalGroupsSequence', ...perFrame),
  ];
  const head = encodeFile(header, { transferSyntaxUID: TS.explicitLE });
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0);
  pixelHeader.writeUInt16LE(0x0010, 2);
  pixelHeader.write('OW', 4, 'latin1');
  pixelHeader.writeUInt32LE(pixelLength, 8);

  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'w');
  try {
    writeAll(fd, Buffer.concat([head, pixelHeader]));
    // Frames vary: a slice phantom per group of frames, each frame stamped with its number.
    const perChunk = 16;
    const chunk = Buffer.alloc(perChunk * frameBytes);
    const phantoms = Array.from({ length: 8 }, (_, k) => ctSlice(rows, cols, { ...slot, slice: k * 20, index: k }));
    for (let f = 0; f < frames; f += perChunk) {
      const n = Math.min(perChunk, frames - f);
      for (let k = 0; k < n; k++) {
        const o = k * frameBytes;
        phantoms[((f + k) >> 9) % phantoms.length].copy(chunk, o);
        chunk.writeUInt32LE(f + k, o);
        chunk.writeUInt32LE((f + k) * 2654435761 >>> 0, o + frameBytes - 4);
      }
      writeAll(fd, chunk.subarray(0, n * frameBytes));
    }
  } finally {
    fs.closeSync(fd);
  }
  return { file, bytes: head.length + 12 + pixelLength, frames, pixelOffset: head.length + 12, pixelLength };
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

/** SHA-256 of bytes [offset, offset+length) of a file, read in 8 MiB chunks. */
export function hashRange(file: string, offset: number, length: number): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(8 << 20);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, length - done), offset + done);
      if (n === 0) throw new Error(`${file}: short read at ${offset + done}`);
      h.update(buf.subarray(0, n));
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Where the native Pixel Data value of an explicit-VR-LE output file starts, found without the
 * engine's parser: the last (7FE0,0010) OW/OB header in the first 64 MiB whose 32-bit length
 * runs exactly to the end of the file.
 */
export function findPixelValue(file: string): { offset: number; length: number } | null {
  const size = fs.statSync(file).size;
  const fd = fs.openSync(file, 'r');
  try {
    const n = Math.min(size, 64 << 20);
    const head = Buffer.allocUnsafe(n);
    fs.readSync(fd, head, 0, n, 0);
    const tag = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);
    for (let i = head.lastIndexOf(tag); i >= 0; i = i > 0 ? head.lastIndexOf(tag, i - 1) : -1) {
      if (i + 12 > n) continue;
      const vr = head.toString('latin1', i + 4, i + 6);
      if (vr !== 'OW' && vr !== 'OB') continue;
      const length = head.readUInt32LE(i + 8);
      if (i + 12 + length === size) return { offset: i + 12, length };
    }
    return null;
  } finally {
    fs.closeSync(fd);
  }
}
