/**
 * Planted-PHI corpus: DICOM files in which every attribute of PS3.15 Table E.1-1 (and PHI
 * hiding places the table does not list) carries a unique, searchable marker value.
 * A de-identifier under test must make every marker disappear (or, for UIDs, be replaced
 * consistently), so a test only needs to search its output bytes for the markers.
 *
 * Also `mutate()`, a deterministic file mangler for fuzz tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  El, Item, Syntax, TS, SOP_CLASS, encodeDataset, encodeFile, makeImageDataset, tagOf, tagString, vrOf,
} from './dicom-builder';
import { repoRoot } from './tools';

export interface PlantedMarker {
  /** Marker as a byte string: one char per byte (latin1). Pure ASCII except the character-set ones. */
  marker: string;
  /** Basename of the file it was planted in. */
  file: string;
  /** Tag path, e.g. "(0010,0010)" or "(0040,0275)[0].(0040,0440)[0].(0040,A123)". */
  path: string;
  keyword: string | null;
  vr: string;
  /** Why it is there: a Table E.1-1 row, or one of the extra hiding places. */
  kind: 'E.1-1' | 'sequence-item' | 'cross-reference' | 'nested' | 'private' | 'un-sequence' | 'overlay' | 'curve'
    | 'meta' | 'charset';
}

/** Table E.1-1 attributes present but unable to carry text (binary numbers): check them by tag. */
export interface UnmarkedTag { file: string; path: string; keyword: string | null; vr: string }

export interface CorpusInstance {
  file: string;
  patient: 'A' | 'B';
  syntax: Syntax;
  undefinedLengths: boolean;
  /** Holds the command elements (0000,1000) and (0000,1001) of Table E.1-1. */
  commandElements: boolean;
  sopClassUID: string;
  sopInstanceUID: string;
  studyInstanceUID: string;
  seriesInstanceUID: string;
  frameOfReferenceUID: string;
}

export interface PhiCorpus {
  /** Absolute paths of the written files. */
  files: string[];
  /** Unique marker byte strings (latin1); each is in at least one file. */
  markers: string[];
  /** Every planting: a marker may be planted in several files (shared identities, references). */
  plantedTags: PlantedMarker[];
  unmarkedTags: UnmarkedTag[];
  instances: CorpusInstance[];
}

interface E11Row { tag: string; keyword: string | null; basic: string }

/** Root of all marker UIDs ("9.7777" arc: test-only, under a root reserved for free use). */
export const MARKER_UID_ROOT = '1.2.826.0.1.3680043.9.7777.';

const IMAGE_ROWS = 8;
const IMAGE_COLS = 8;

// ---------------------------------------------------------------- marker values

/**
 * Generates marker values. Every value embeds a fresh number from one counter, and all
 * formats of a VR family share a length or a distinct prefix, so no marker is a substring
 * of another (tests search output bytes for them).
 */
class MarkerFactory {
  private n = 100000; // 6 digits throughout
  private dayA = 0; // DA
  private dayT = 0; // DT
  private secs = 0; // TM
  private ages = 0; // AS
  private kanji = 0;

  next(): number { return this.n++; }

  forVr(vr: string): string | null {
    switch (vr) {
      case 'AE': case 'CS': return `PHIX${this.next()}`;
      case 'AS': return `${String(100 + this.ages++).padStart(3, '0')}W`; // 100W.. (only 4 bytes: see report)
      case 'DA': return ymd(Date.UTC(1931, 0, 1) + this.dayA++ * 86400e3);
      case 'DT': return `${ymd(Date.UTC(1961, 0, 1) + this.dayT++ * 86400e3)}101112`;
      case 'TM': {
        const s = this.secs++;
        return `13${String(Math.floor(s / 60) % 60).padStart(2, '0')}${String(s % 60).padStart(2, '0')}.424242`;
      }
      case 'DS': return `-8${this.next()}.5`;
      case 'IS': return `-9${this.next()}`;
      case 'UI': return `${MARKER_UID_ROOT}${this.next()}`;
      case 'UR': return `http://phi.invalid/PHIx${this.next()}`;
      case 'PN': return `PHIx${this.next()}^JANE`;
      case 'LO': case 'SH': case 'LT': case 'ST': case 'UT': case 'UC':
      case 'OB': case 'OW': case 'OD': case 'OF': case 'OL': case 'OV': case 'UN':
        return `PHIx${this.next()}`;
      default: return null; // US, SS, FL, ...: no room for text
    }
  }

  /** The searchable part of a value (PN: family name; others: the whole value). */
  static searchable(vr: string, value: string): string {
    return vr === 'PN' ? value.split('^')[0] : value;
  }

  /** Two unique JIS X 0208 level-1 kanji, ISO 2022 IR 87 encoded with escapes (PS3.5 H.3.2 style). */
  jisKanji(): Buffer {
    const code = () => { const k = this.kanji++; return [0x30 + Math.floor(k / 94), 0x21 + (k % 94)]; };
    return Buffer.from([0x1b, 0x24, 0x42, ...code(), ...code(), 0x1b, 0x28, 0x42]);
  }

  /** Unique UTF-8 name part: Latin-1 supplement, Latin Extended-A and one CJK ideograph. */
  utf8Name(): Buffer {
    return Buffer.from(`Ŝtraße${String.fromCodePoint(0x4e00 + this.kanji++)}`, 'utf8');
  }
}

function ymd(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

/** OW bytes that read as `text` in the file whatever the byte order (pre-swapped for BE). */
function owText(text: string, size: number, syntax: Syntax): Buffer {
  const b = Buffer.alloc(size);
  b.write(text, 'latin1');
  return syntax === 'explicitBE' ? b.swap16() : b;
}

// ---------------------------------------------------------------- corpus layout

interface Plan { patient: 'A' | 'B'; series: 1 | 2 | 3; syntax: Syntax; undefinedLengths: boolean; commandElements?: boolean }

// Patient A: one MR study in two series; patient B: one CT study. Mixed encodings.
const PLANS: Plan[] = [
  { patient: 'A', series: 1, syntax: 'explicitLE', undefinedLengths: false, commandElements: true },
  { patient: 'A', series: 1, syntax: 'implicitLE', undefinedLengths: false },
  { patient: 'A', series: 1, syntax: 'explicitBE', undefinedLengths: false },
  { patient: 'A', series: 2, syntax: 'deflatedLE', undefinedLengths: false },
  { patient: 'A', series: 2, syntax: 'explicitLE', undefinedLengths: true },
  { patient: 'A', series: 2, syntax: 'implicitLE', undefinedLengths: true },
  { patient: 'B', series: 3, syntax: 'explicitLE', undefinedLengths: false },
  { patient: 'B', series: 3, syntax: 'implicitLE', undefinedLengths: true },
];

/** Identity attributes that must agree between instances: planted once per scope, not per file. */
const SHARED: Record<string, 'patient' | 'study' | 'series' | 'instance'> = {
  PatientName: 'patient', PatientID: 'patient', PatientBirthDate: 'patient', OtherPatientIDs: 'patient',
  IssuerOfPatientID: 'patient',
  StudyInstanceUID: 'study', StudyDate: 'study', StudyTime: 'study', AccessionNumber: 'study', StudyID: 'study',
  ReferringPhysicianName: 'study', StudyDescription: 'study',
  SeriesInstanceUID: 'series', FrameOfReferenceUID: 'series', SeriesDate: 'series', SeriesTime: 'series',
  SeriesDescription: 'series',
  SOPInstanceUID: 'instance', MediaStorageSOPInstanceUID: 'instance',
};

/**
 * Single-tag rows of Table E.1-1 not planted generically at the top level: the meta element
 * (written from SOPInstanceUID) and ReferencedSOPInstanceUID (planted inside the reference
 * sequences, pointing at real instances). Pattern rows (50xx, 60xx, odd groups) are skipped by
 * the generic loop and planted by the curve/overlay/private code.
 */
const NOT_GENERIC = new Set(['(0002,0003)', '(0008,1155)']);

/** Table E.1-1 sequences that get specific item content instead of the generic coded item. */
const SPECIAL_SEQUENCES = new Set(['ReferencedImageSequence', 'SourceImageSequence', 'ReferencedStudySequence',
  'RequestAttributesSequence', 'ContentSequence']);

/** Standard sequence written as UN (undefined length, implicit VR LE content) in explicit VR LE files. */
const SQ_AS_UN = 'ReasonForVisitCodeSequence';

function loadE11(): E11Row[] {
  return JSON.parse(fs.readFileSync(path.join(repoRoot(), 'data/standard/ps3.15-e1-1.json'), 'utf8'));
}

function parseTag(s: string): number {
  return parseInt(s.slice(1, 5) + s.slice(6, 10), 16) >>> 0;
}

/**
 * Write the planted-PHI corpus (8 files) into `dir` and say where every marker is.
 * Deterministic: the same bytes on every call.
 */
export async function generatePhiCorpus(dir: string): Promise<PhiCorpus> {
  await fs.promises.mkdir(dir, { recursive: true });
  const rows = loadE11();
  const mf = new MarkerFactory();
  const shared = new Map<string, string>();
  const sharedBytes = new Map<string, Buffer>();
  const planted: PlantedMarker[] = [];
  const unmarked: UnmarkedTag[] = [];

  // Identities first, so that instances can reference each other.
  const instances: CorpusInstance[] = PLANS.map((p, i) => {
    const uid = (scope: string, kw: string) => sharedValue(shared, `${scope}:${kw}`, () => mf.forVr('UI')!);
    const studyScope = `study${p.patient}`;
    return {
      file: `${String(i + 1).padStart(2, '0')}_${p.patient}_s${p.series}_${p.syntax}${p.undefinedLengths ? '_undef' : ''}.dcm`,
      patient: p.patient, syntax: p.syntax, undefinedLengths: p.undefinedLengths, commandElements: !!p.commandElements,
      sopClassUID: p.patient === 'A' ? SOP_CLASS.mrImage : SOP_CLASS.ctImage,
      sopInstanceUID: uid(`instance${i}`, 'SOPInstanceUID'),
      studyInstanceUID: uid(studyScope, 'StudyInstanceUID'),
      seriesInstanceUID: uid(`series${p.series}`, 'SeriesInstanceUID'),
      frameOfReferenceUID: uid(`series${p.series}`, 'FrameOfReferenceUID'),
    };
  });

  const files: string[] = [];
  for (let i = 0; i < PLANS.length; i++) {
    const plan = PLANS[i];
    const inst = instances[i];
    const file = inst.file;
    const scopes = { patient: `patient${plan.patient}`, study: `study${plan.patient}`, series: `series${plan.series}`, instance: `instance${i}` };
    const unplant = (p: string) => {
      for (let k = planted.length - 1; k >= 0; k--) if (planted[k].file === file && planted[k].path === p) planted.splice(k, 1);
    };
    const plant = (p: string, keyword: string | null, vr: string, value: string, kind: PlantedMarker['kind']) => {
      planted.push({ marker: MarkerFactory.searchable(vr, value), file, path: p, keyword, vr, kind });
    };
    /** Marker value for a keyword in this file: shared by scope for identity attributes. */
    const valueFor = (keyword: string | null, vr: string): string | null => {
      const scope = keyword ? SHARED[keyword] : undefined;
      if (!scope) return mf.forVr(vr);
      const k = keyword === 'MediaStorageSOPInstanceUID' ? 'SOPInstanceUID' : keyword!;
      return sharedValue(shared, `${scopes[scope]}:${k}`, () => mf.forVr(vr)!);
    };
    const codedItem = (p: string): El[] => {
      const meaning = mf.forVr('LO')!;
      plant(`${p}.(0008,0104)`, 'CodeMeaning', 'LO', meaning, 'sequence-item');
      return [codeEl('CodeValue', 'PHI1'), codeEl('CodingSchemeDesignator', '99PHI'), codeEl('CodeMeaning', meaning)];
    };

    const elements = new Map<number, El>();
    const put = (e: El) => elements.set(e.tag, e);

    // 1. Minimal valid image (pixel data etc.); its identifying values are all overwritten below.
    for (const e of makeImageDataset({ modality: plan.patient === 'A' ? 'MR' : 'CT', rows: IMAGE_ROWS, cols: IMAGE_COLS, bits: 16, ts: TS[plan.syntax] })) put(e);
    put(codeEl('SOPClassUID', inst.sopClassUID));
    put(codeEl('InstanceNumber', String(i + 1)));
    put(codeEl('SeriesNumber', String(plan.series)));
    put(codeEl('Modality', plan.patient === 'A' ? 'MR' : 'CT'));

    // 2. Every single-tag row of Table E.1-1.
    for (const row of rows) {
      if (!/^\([0-9A-F]{4},[0-9A-F]{4}\)$/i.test(row.tag) || NOT_GENERIC.has(row.tag)) continue;
      const tag = parseTag(row.tag);
      // Command elements (group 0000) do not belong in a stored data set, but do occur in files
      // written by naive C-STORE receivers. Only in the first file: dicom3tools rejects them
      // ("tags out of order"), and pydicom 2.3 loses the rest of a big endian data set after them.
      if (tag >>> 16 === 0 && !plan.commandElements) continue;
      const vr = vrOf(tag);
      const p = tagString(tag);
      if (vr === 'SQ') {
        if (row.keyword && SPECIAL_SEQUENCES.has(row.keyword)) continue; // below
        put({ tag, vr, value: [{ elements: codedItem(`${p}[0]`) }] });
        continue;
      }
      const value = valueFor(row.keyword, vr);
      if (value === null) {
        put({ tag, vr, value: [1] });
        unmarked.push({ file, path: p, keyword: row.keyword, vr });
        continue;
      }
      put({ tag, vr, value: ['OW'].includes(vr) ? owText(value, value.length, plan.syntax) : value });
      plant(p, row.keyword, vr, value, 'E.1-1');
    }

    // 3. Sequences with specific content: cross-references to other instances of the corpus.
    const sameSeries = instances.filter((x, j) => j !== i && PLANS[j].series === plan.series);
    const otherSeries = instances.filter((x, j) => PLANS[j].patient === plan.patient && PLANS[j].series !== plan.series);
    const ref = (seqKw: string, target: CorpusInstance | undefined) => {
      const t = target ?? sameSeries[0];
      plant(`${tagString(tagOf(seqKw))}[0].(0008,1155)`, 'ReferencedSOPInstanceUID', 'UI', t.sopInstanceUID, 'cross-reference');
      put(seqEl(seqKw, [codeEl('ReferencedSOPClassUID', t.sopClassUID), codeEl('ReferencedSOPInstanceUID', t.sopInstanceUID)]));
    };
    ref('ReferencedImageSequence', sameSeries[i % sameSeries.length]);
    ref('SourceImageSequence', otherSeries[0]);
    plant('(0008,1110)[0].(0008,1155)', 'ReferencedSOPInstanceUID', 'UI', inst.studyInstanceUID, 'cross-reference');
    put(seqEl('ReferencedStudySequence', [codeEl('ReferencedSOPClassUID', '1.2.840.10008.3.1.2.3.1'),
      codeEl('ReferencedSOPInstanceUID', inst.studyInstanceUID)]));

    // ContentSequence: a TEXT content item.
    const textValue = mf.forVr('UT')!;
    plant('(0040,A730)[0].(0040,A160)', 'TextValue', 'UT', textValue, 'sequence-item');
    put(seqEl('ContentSequence', [codeEl('RelationshipType', 'CONTAINS'), codeEl('ValueType', 'TEXT'),
      seqEl('ConceptNameCodeSequence', [codeEl('CodeValue', '121106'), codeEl('CodingSchemeDesignator', 'DCM'), codeEl('CodeMeaning', 'Comment')]),
      codeEl('TextValue', textValue)]));

    // 4. Nested 3 levels: RequestAttributesSequence > ProtocolContextSequence > ContentItemModifierSequence.
    const [rpId, pn2, pn3] = [mf.forVr('SH')!, mf.forVr('PN')!, mf.forVr('PN')!];
    plant('(0040,0275)[0].(0040,1001)', 'RequestedProcedureID', 'SH', rpId, 'nested');
    plant('(0040,0275)[0].(0040,0440)[0].(0040,A123)', 'PersonName', 'PN', pn2, 'nested');
    plant('(0040,0275)[0].(0040,0440)[0].(0040,0441)[0].(0040,A123)', 'PersonName', 'PN', pn3, 'nested');
    const pnameItem = (pn: string, more: El[] = []) => [codeEl('ValueType', 'PNAME'),
      seqEl('ConceptNameCodeSequence', [codeEl('CodeValue', '121008'), codeEl('CodingSchemeDesignator', 'DCM'), codeEl('CodeMeaning', 'Person Observer Name')]),
      codeEl('PersonName', pn), ...more];
    put(seqEl('RequestAttributesSequence', [codeEl('RequestedProcedureID', rpId),
      seqEl('ProtocolContextSequence', pnameItem(pn2, [seqEl('ContentItemModifierSequence', pnameItem(pn3))]))]));

    // 5. Names in other character sets (patient A: ISO 2022 IR 87, patient B: ISO_IR 192).
    const nameAscii = valueFor('PatientName', 'PN')!;
    const name = sharedBuffer(sharedBytes, scopes.patient, () => plan.patient === 'A'
      ? Buffer.concat([Buffer.from(`${nameAscii}=`, 'latin1'), mf.jisKanji(), Buffer.from('^', 'latin1'), mf.jisKanji()])
      : Buffer.concat([Buffer.from(`${nameAscii} `, 'latin1'), mf.utf8Name()]));
    put(codeEl('SpecificCharacterSet', plan.patient === 'A' ? '\\ISO 2022 IR 87' : 'ISO_IR 192'));
    put({ tag: tagOf('PatientName'), vr: 'PN', value: name });
    const nonAscii = name.subarray(nameAscii.length + 1).toString('latin1');
    plant('(0010,0010)', 'PatientName', 'PN', nonAscii, 'charset');
    // PatientMotherBirthName keeps its E.1-1 marker and gets a non-ASCII ideographic group.
    const mother = elements.get(tagOf('PatientMotherBirthName'))!.value as string;
    const motherExtra = plan.patient === 'A' ? mf.jisKanji() : mf.utf8Name();
    put({ tag: tagOf('PatientMotherBirthName'), vr: 'PN', value: Buffer.concat([Buffer.from(`${mother}=`, 'latin1'), motherExtra]) });
    plant('(0010,1060)', 'PatientMotherBirthName', 'PN', motherExtra.toString('latin1'), 'charset');

    // 6. Private data: creators, plain private text, private SQ holding private SQs,
    //    a known "safe" private attribute next to an unsafe one, a vendor blob.
    const [p1, p2, p3, p4, p5, p6] = ['LO', 'LT', 'LO', 'PN', 'LO', 'OB'].map((v) => mf.forVr(v)!);
    const creator = (g: number, name: string): El => ({ tag: (g << 16 | 0x0010) >>> 0, vr: 'LO', value: name });
    put(creator(0x0009, 'PHI TEST CREATOR'));
    put({ tag: 0x00091001, vr: 'LO', value: p1 });
    put({ tag: 0x00091002, vr: 'LT', value: p2 });
    put({ tag: 0x00091003, vr: 'SQ', value: [{ elements: [creator(0x0009, 'PHI TEST CREATOR'), { tag: 0x00091001, vr: 'LO', value: p3 },
      { tag: 0x00091004, vr: 'SQ', value: [{ elements: [creator(0x0009, 'PHI TEST CREATOR'), { tag: 0x00091005, vr: 'PN', value: p4 }] }] }] }] });
    plant('(0009,1001)', null, 'LO', p1, 'private');
    plant('(0009,1002)', null, 'LT', p2, 'private');
    plant('(0009,1003)[0].(0009,1001)', null, 'LO', p3, 'private');
    plant('(0009,1003)[0].(0009,1004)[0].(0009,1005)', null, 'PN', p4, 'private');
    put(creator(0x0019, 'GEMS_ACQU_01'));
    put({ tag: 0x00191023, vr: 'DS', value: '1.5' }); // Table E.3.10-1 "Table Speed": safe, no marker
    put({ tag: 0x001910f0, vr: 'LO', value: p5 }); // same block, not in the safe list
    plant('(0019,10F0)', null, 'LO', p5, 'private');
    put(creator(0x0029, 'PHI VENDOR BLOB'));
    put({ tag: 0x00291010, vr: 'OB', value: Buffer.concat([Buffer.from('BLOB\0\0\0\0', 'latin1'), Buffer.from(p6, 'latin1')]) });
    plant('(0029,1010)', null, 'OB', p6, 'private');

    // 7. UN holding an implicit VR LE sequence (private, and a standard SQ lost to UN). Its
    //    content is LE even in the BE file, where it is written with a defined length.
    const [u1, u2] = [mf.forVr('LO')!, mf.forVr('PN')!];
    put(creator(0x0011, 'PHI UN CREATOR'));
    put({ tag: 0x00111010, vr: 'UN', undefinedLength: plan.syntax !== 'explicitBE', value: [{ elements: [
      creator(0x0011, 'PHI UN CREATOR'), { tag: 0x00111011, vr: 'LO', value: u1 }, { tag: 0x00100010, vr: 'PN', value: u2 }] }] });
    plant('(0011,1010)[0].(0011,1011)', null, 'LO', u1, 'un-sequence');
    plant('(0011,1010)[0].(0010,0010)', 'PatientName', 'PN', u2, 'un-sequence');
    if (plan.syntax === 'explicitLE' && plan.undefinedLengths) {
      const seqTag = tagOf(SQ_AS_UN);
      const m = mf.forVr('LO')!;
      put({ tag: seqTag, vr: 'UN', undefinedLength: true, value: [{ elements: [codeEl('CodeValue', 'PHI1'),
        codeEl('CodingSchemeDesignator', '99PHI'), codeEl('CodeMeaning', m)] }] });
      unplant(`${tagString(seqTag)}[0].(0008,0104)`);
      plant(`${tagString(seqTag)}[0].(0008,0104)`, 'CodeMeaning', 'LO', m, 'un-sequence');
    }

    // 8. Overlays (groups 6000 and 6002) and a curve (group 5000), all retired-but-real PHI carriers.
    const [ovDesc, ovLabel, ovComm, ovData, ov2Comm, cvDesc, cvLabel, cvData] =
      ['LO', 'LO', 'LT', 'OW', 'LT', 'LO', 'LO', 'OW'].map((v) => mf.forVr(v)!);
    for (const e of [
      { tag: 0x60000010, vr: 'US', value: [8] }, { tag: 0x60000011, vr: 'US', value: [16] },
      { tag: 0x60000022, vr: 'LO', value: ovDesc }, { tag: 0x60000040, vr: 'CS', value: 'G' },
      { tag: 0x60000050, vr: 'SS', value: [1, 1] }, { tag: 0x60000100, vr: 'US', value: [1] },
      { tag: 0x60000102, vr: 'US', value: [0] }, { tag: 0x60001500, vr: 'LO', value: ovLabel },
      { tag: 0x60003000, vr: 'OW', value: owText(ovData, 16, plan.syntax) }, { tag: 0x60004000, vr: 'LT', value: ovComm },
      { tag: 0x60024000, vr: 'LT', value: ov2Comm },
      { tag: 0x50000005, vr: 'US', value: [1] }, { tag: 0x50000010, vr: 'US', value: [6] },
      { tag: 0x50000020, vr: 'CS', value: 'TAC' }, { tag: 0x50000022, vr: 'LO', value: cvDesc },
      { tag: 0x50000103, vr: 'US', value: [0] }, { tag: 0x50002500, vr: 'LO', value: cvLabel },
      { tag: 0x50003000, vr: 'OW', value: owText(cvData, 12, plan.syntax) },
    ] as El[]) put(e);
    plant('(6000,0022)', 'OverlayDescription', 'LO', ovDesc, 'overlay');
    plant('(6000,1500)', 'OverlayLabel', 'LO', ovLabel, 'overlay');
    plant('(6000,3000)', 'OverlayData', 'OW', ovData, 'overlay');
    plant('(6000,4000)', 'OverlayComments', 'LT', ovComm, 'overlay');
    plant('(6002,4000)', 'OverlayComments', 'LT', ov2Comm, 'overlay');
    plant('(5000,0022)', 'CurveDescription', 'LO', cvDesc, 'curve');
    plant('(5000,2500)', 'CurveLabel', 'LO', cvLabel, 'curve');
    plant('(5000,3000)', 'CurveData', 'OW', cvData, 'curve');

    // 9. Identity UIDs (values shared with the cross-references above).
    put(codeEl('SOPInstanceUID', inst.sopInstanceUID));
    put(codeEl('StudyInstanceUID', inst.studyInstanceUID));
    put(codeEl('SeriesInstanceUID', inst.seriesInstanceUID));
    put(codeEl('FrameOfReferenceUID', inst.frameOfReferenceUID));

    // 10. File meta markers.
    const [srcAE, privUid, privInfo] = [mf.forVr('AE')!, mf.forVr('UI')!, mf.forVr('OB')!];
    const meta: El[] = [
      { tag: 0x00020016, vr: 'AE', value: srcAE },
      { tag: 0x00020100, vr: 'UI', value: privUid },
      { tag: 0x00020102, vr: 'OB', value: privInfo },
    ];
    plant('(0002,0003)', 'MediaStorageSOPInstanceUID', 'UI', inst.sopInstanceUID, 'meta');
    plant('(0002,0016)', 'SourceApplicationEntityTitle', 'AE', srcAE, 'meta');
    plant('(0002,0100)', 'PrivateInformationCreatorUID', 'UI', privUid, 'meta');
    plant('(0002,0102)', 'PrivateInformation', 'OB', privInfo, 'meta');

    let list = [...elements.values()];
    if (plan.undefinedLengths) list = list.map(allUndefined);
    const bytes = encodeFile(list, { transferSyntaxUID: TS[plan.syntax], meta });
    const abs = path.join(dir, file);
    await fs.promises.writeFile(abs, bytes);
    files.push(abs);
  }

  // Record each planting once per (file, path, marker).
  const seen = new Set<string>();
  const plantedTags = planted.filter((p) => {
    const k = `${p.file}|${p.path}|${p.marker}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return { files, markers: [...new Set(plantedTags.map((p) => p.marker))], plantedTags, unmarkedTags: unmarked, instances };
}

function sharedValue(map: Map<string, string>, key: string, make: () => string): string {
  if (!map.has(key)) map.set(key, make());
  return map.get(key)!;
}
function sharedBuffer(map: Map<string, Buffer>, key: string, make: () => Buffer): Buffer {
  if (!map.has(key)) map.set(key, make());
  return map.get(key)!;
}

function codeEl(keyword: string, value: string): El {
  const tag = tagOf(keyword);
  return { tag, vr: vrOf(tag), value };
}
function seqEl(keyword: string, elements: El[]): El {
  return { tag: tagOf(keyword), vr: 'SQ', value: [{ elements }] };
}

/** The same element with every sequence and item (recursively) in undefined-length form. */
function allUndefined(e: El): El {
  if (!Array.isArray(e.value) || (e.vr !== 'SQ' && e.vr !== 'UN') || (e.value.length && typeof e.value[0] !== 'object')) return e;
  const items = (e.value as Item[]).map((it) => ({ elements: it.elements.map(allUndefined), undefinedLength: true }));
  return { ...e, value: items, undefinedLength: true };
}

// ---------------------------------------------------------------- fuzzing

/** Mutation kinds; `mutate(buf, seed)` uses MUTATION_KINDS[seed % 6], so seeds 0..5 cover all. */
export const MUTATION_KINDS = ['truncate', 'flipHeaderBytes', 'badLength', 'garbleVR', 'nestingBomb', 'hugeText'] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

export function mutationKind(seed: number): MutationKind {
  return MUTATION_KINDS[(seed >>> 0) % MUTATION_KINDS.length];
}

/** mulberry32: tiny deterministic PRNG, returns floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KNOWN_VRS = new Set(['AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW',
  'PN', 'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV']);
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

interface Layout { bodyStart: number; syntax: Syntax }

/** Where the data set starts and how it is encoded, read from the meta (best effort, for fuzzing only). */
function sniff(buf: Buffer): Layout {
  const looksExplicit = (o: number) => o + 6 <= buf.length && KNOWN_VRS.has(buf.toString('latin1', o + 4, o + 6));
  if (buf.length >= 144 && buf.toString('latin1', 128, 132) === 'DICM') {
    let pos = 132;
    let end = buf.length;
    let ts = '';
    while (pos + 8 <= Math.min(end, buf.length)) {
      const group = buf.readUInt16LE(pos), elem = buf.readUInt16LE(pos + 2);
      if (group !== 2) break;
      const vr = buf.toString('latin1', pos + 4, pos + 6);
      const long = LONG_VRS.has(vr);
      const len = long ? buf.readUInt32LE(pos + 8) : buf.readUInt16LE(pos + 6);
      const valueAt = pos + (long ? 12 : 8);
      if (elem === 0 && len === 4 && valueAt + 4 <= buf.length) end = valueAt + 4 + buf.readUInt32LE(valueAt);
      if (elem === 0x10) ts = buf.toString('latin1', valueAt, Math.min(buf.length, valueAt + len)).replace(/[\0 ]+$/, '');
      pos = valueAt + len;
    }
    const syntax: Syntax = ts === TS.implicitLE ? 'implicitLE' : ts === TS.explicitBE ? 'explicitBE'
      : ts === TS.deflatedLE ? 'deflatedLE' : 'explicitLE';
    return { bodyStart: Math.min(pos, buf.length), syntax };
  }
  return { bodyStart: 0, syntax: looksExplicit(0) ? 'explicitLE' : 'implicitLE' };
}

/** Even offsets in `body` that look like element headers (explicit: a VR; implicit: a common group). */
function headerOffsets(body: Buffer, syntax: Syntax): number[] {
  const out: number[] = [];
  const big = syntax === 'explicitBE';
  for (let o = 0; o + 8 <= body.length; o += 2) {
    const group = big ? body.readUInt16BE(o) : body.readUInt16LE(o);
    if (syntax === 'implicitLE') {
      if ([0x0008, 0x0010, 0x0018, 0x0020, 0x0028, 0x0040].includes(group)) out.push(o);
    } else if (KNOWN_VRS.has(body.toString('latin1', o + 4, o + 6)) && group <= 0x7fe0 && group > 2) {
      out.push(o);
    }
  }
  return out;
}

/** Bytes of a sequence nested `depth` levels deep (built iteratively: no recursion). */
function nestingBomb(depth: number, syntax: Syntax): Buffer {
  const unit = encodeDataset([{ tag: 0xfffafffa, vr: 'SQ', undefinedLength: true, value: [{ elements: [], undefinedLength: true }] }],
    syntax === 'deflatedLE' ? 'explicitLE' : syntax);
  const open = unit.subarray(0, unit.length - 16); // SQ header + item header
  const close = unit.subarray(unit.length - 16); // item delimiter + sequence delimiter
  return Buffer.concat([Buffer.concat(Array(depth).fill(open)), Buffer.concat(Array(depth).fill(close))]);
}

/**
 * Deterministically damage a DICOM file for fuzzing. `kind` defaults to mutationKind(seed).
 *  - truncate: cut at a random offset;
 *  - flipHeaderBytes: flip 1-8 random bytes in the first 1 KiB after the preamble;
 *  - badLength: set one element's length field to a huge, odd or overlong value;
 *  - garbleVR: replace one explicit VR by garbage (implicit files: length damage instead);
 *  - nestingBomb: append a sequence nested 10,000 deep;
 *  - hugeText: set one UT value (or an appended one) to 50 MB of text.
 * Deflated files: truncation and flips hit the compressed bytes; the others are applied to the
 * inflated data set, which is then deflated again.
 */
export function mutate(buf: Buffer, seed: number, kind: MutationKind = mutationKind(seed)): Buffer {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const out = Buffer.from(buf);
  if (kind === 'truncate') return out.subarray(0, 1 + int(Math.max(1, out.length - 1)));
  const { bodyStart, syntax } = sniff(buf);
  if (kind === 'flipHeaderBytes') {
    const from = Math.min(128, out.length - 1);
    const to = Math.min(out.length, Math.max(bodyStart, 132) + 1024);
    const flips = 1 + int(8);
    for (let k = 0; k < flips; k++) out[from + int(to - from)] ^= 1 << int(8);
    return out;
  }
  const head = out.subarray(0, bodyStart);
  let body: Buffer = out.subarray(bodyStart);
  if (syntax === 'deflatedLE') {
    try { body = zlib.inflateRawSync(body); } catch { /* already damaged: mutate the raw bytes */ }
  }
  const big = syntax === 'explicitBE';
  const explicit = syntax !== 'implicitLE';
  const headers = headerOffsets(body, syntax);
  body = Buffer.from(body);

  if ((kind === 'badLength' || (kind === 'garbleVR' && !explicit)) && headers.length) {
    const o = headers[int(headers.length)];
    const vr = body.toString('latin1', o + 4, o + 6);
    if (explicit && !LONG_VRS.has(vr)) {
      const v = [0xffff, 0xfffe, 0x7fff, 3, 1][int(5)];
      big ? body.writeUInt16BE(v, o + 6) : body.writeUInt16LE(v, o + 6);
    } else {
      const at = o + (explicit ? 8 : 4);
      const v = [0xffffffff, 0xfffffffe, 0x7fffffff, 0x10000001, 3, body.length - at + 2][int(6)] >>> 0;
      if (at + 4 <= body.length) big ? body.writeUInt32BE(v, at) : body.writeUInt32LE(v, at);
    }
  } else if (kind === 'garbleVR' && headers.length) {
    const o = headers[int(headers.length)];
    const garbage = ['ZZ', '\0\0', 'un', 'SQ', 'UN', 'OB', '  ', String.fromCharCode(int(256), int(256))][int(8)];
    body.write(garbage, o + 4, 'latin1');
  } else if (kind === 'nestingBomb') {
    body = Buffer.concat([body, nestingBomb(10_000, syntax)]);
  } else if (kind === 'hugeText') {
    const text = Buffer.alloc(50 * 1024 * 1024, 'HUGE TEXT ');
    const ut = explicit ? headers.filter((o) => body.toString('latin1', o + 4, o + 6) === 'UT') : [];
    const o = ut.length ? ut[int(ut.length)] : -1;
    const len = o >= 0 ? (big ? body.readUInt32BE(o + 8) : body.readUInt32LE(o + 8)) : 0;
    if (o >= 0 && o + 12 + len <= body.length) {
      const hdr = Buffer.from(body.subarray(o, o + 12));
      big ? hdr.writeUInt32BE(text.length, 8) : hdr.writeUInt32LE(text.length, 8);
      body = Buffer.concat([body.subarray(0, o), hdr, text, body.subarray(o + 12 + len)]);
    } else {
      body = Buffer.concat([body, encodeDataset([{ tag: 0xfffafffa, vr: 'SQ', value: [{ elements: [
        { tag: tagOf('TextValue'), vr: 'UT', value: text }] }] }], syntax === 'deflatedLE' ? 'explicitLE' : syntax)]);
    }
  }
  if (syntax === 'deflatedLE') body = zlib.deflateRawSync(body);
  return Buffer.concat([head, body]);
}

/**
 * The bytes a marker search should look at: the file itself, with a deflated data set
 * inflated (a marker in a deflated file is invisible in its raw bytes).
 */
export function searchableBytes(buf: Buffer): Buffer {
  const { bodyStart, syntax } = sniff(buf);
  if (syntax !== 'deflatedLE') return buf;
  return Buffer.concat([buf.subarray(0, bodyStart), zlib.inflateRawSync(buf.subarray(bodyStart))]);
}
