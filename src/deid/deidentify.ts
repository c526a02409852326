import * as zlib from 'node:zlib';
import { BufferSource } from '../dicom/byte-source';
import { DElement, findElement, stringValue } from '../dicom/dataset';
import { DicomParseError } from '../dicom/errors';
import { encodeFileMeta } from '../dicom/meta';
import { Instance, readInstance } from '../dicom/part10';
import { PartsSource } from '../dicom/parts-source';
import { T, Tag, formatTag } from '../dicom/tags';
import { Syntax, TS } from '../dicom/transfer-syntax';
import { encodeNodes, OutNode, Part } from '../dicom/writer';
import { basicRules } from './basic-profile';
import { collectIdentifiers, DeidStats, emptyStats, walk } from './engine';
import { Identifier, identifiersOf } from './identifiers';
import { findLeak } from './leak-guard';
import { markingNodes } from './marking';
import { unacceptedRisk } from './pixel-risk';
import { pixelOnlyRules } from './pixel-only-profile';
import { Pseudonymizer } from './pseudonyms';
import { Rules, withOverrides } from './rules';
import { DeidSettings } from './settings';
import { encodeString } from '../dicom/values';

export interface DeidOutput {
  /** Preamble + new File Meta group. */
  meta: Buffer;
  /** The dataset, as buffers and untouched input ranges (Pixel Data is never loaded). */
  parts: Part[];
  transferSyntaxUid: string;
  patientPseudonym: string;
  sopClassUid: string;
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  /** Location of the Pixel Data value in the input dataset source (for before/after hashing). */
  pixelRange: { start: number; end: number } | null;
  stats: DeidStats;
}

export type QuarantineCode = 'MISSING_ATTRIBUTE' | 'PIXEL_RISK' | 'LOOKUP_MISSING' | 'LEAK_DETECTED' | DicomParseError['code'];

export type DeidOutcome =
  | { kind: 'forward'; output: DeidOutput }
  | { kind: 'skip'; code: 'NO_PIXEL_DATA'; reason: string }
  | { kind: 'quarantine'; code: QuarantineCode; reason: string };

const quarantine = (code: QuarantineCode, reason: string): DeidOutcome => ({ kind: 'quarantine', code, reason });

/**
 * The de-identification engine: pure (no I/O besides reading the input's byte source).
 * One Engine per settings + secret; `process` is safe to call for any number of instances.
 */
export class Engine {
  private readonly rules: Rules;
  readonly pseudo: Pseudonymizer;

  constructor(readonly settings: DeidSettings, secret: Buffer) {
    this.pseudo = new Pseudonymizer(secret);
    const base = settings.profile === 'basic' ? basicRules(settings.options) : pixelOnlyRules();
    this.rules = withOverrides(base, settings.overrides);
  }

  /** The De-identification Method nodes depend only on the settings and the syntax: built once. */
  private readonly markingBySyntax = new Map<string, OutNode[]>();
  private marking(syntax: Syntax): OutNode[] {
    const key = `${syntax.explicit}/${syntax.little}`;
    let nodes = this.markingBySyntax.get(key);
    if (!nodes) this.markingBySyntax.set(key, (nodes = markingNodes(this.settings, syntax)));
    return nodes;
  }

  /** Parses and de-identifies an in-memory file; unreadable input becomes a quarantine outcome. */
  processBytes(bytes: Buffer): DeidOutcome {
    let instance: Instance;
    try {
      instance = readInstance(new BufferSource(bytes));
    } catch (err) {
      if (err instanceof DicomParseError) return quarantine(err.code, err.message);
      throw err;
    }
    return this.process(instance);
  }

  process(instance: Instance): DeidOutcome {
    try {
      return this.processUnsafe(instance);
    } catch (err) {
      if (err instanceof DicomParseError) return quarantine(err.code, err.message);
      throw err;
    }
  }

  private processUnsafe(instance: Instance): DeidOutcome {
    const { dataset } = instance;
    const top = dataset.elements;
    const text = (tag: Tag): string | undefined => {
      const el = findElement(top, tag);
      return el && !el.items && el.length <= 1024 ? stringValue(dataset.src, el) : undefined;
    };
    const pixel = top.find((el) => el.tag === T.PixelData || el.tag === T.FloatPixelData || el.tag === T.DoubleFloatPixelData);
    if (!pixel && this.settings.profile === 'pixel-only') {
      return { kind: 'skip', code: 'NO_PIXEL_DATA', reason: 'no Pixel Data: the pixel-only profile has nothing to keep' };
    }
    const sopClassUid = text(T.SOPClassUID);
    const uids = { sop: text(T.SOPInstanceUID), study: text(T.StudyInstanceUID), series: text(T.SeriesInstanceUID) };
    if (!sopClassUid || !uids.sop || !uids.study || !uids.series) {
      const missing = !sopClassUid ? T.SOPClassUID : !uids.sop ? T.SOPInstanceUID : !uids.study ? T.StudyInstanceUID : T.SeriesInstanceUID;
      return quarantine('MISSING_ATTRIBUTE', `not a storable composite instance: ${formatTag(missing)} is missing or empty`);
    }

    const risk = unacceptedRisk(
      { sopClassUid, burnedInAnnotation: text(T.BurnedInAnnotation), recognizableVisualFeatures: text(T.RecognizableVisualFeatures) },
      this.settings.acceptRisks,
    );
    if (risk) return quarantine('PIXEL_RISK', `${risk.reason}; accept it explicitly with the '${risk.risk}' risk setting if its pixels were reviewed`);

    const patientId = text(T.PatientID) ?? '';
    // Instances without a PatientID still group by name + birth date, else by study.
    const patientKey = patientId !== '' ? patientId : text(T.PatientName) ? `name:${text(T.PatientName)}|${text(T.PatientBirthDate) ?? ''}` : `study:${uids.study}`;
    let patientPseudonym = this.pseudo.patient(patientKey, this.settings.patientIdPrefix);
    const lookup = this.settings.lookup;
    if (lookup) {
      const subject = lookup.table.get(patientId);
      if (subject !== undefined) patientPseudonym = subject;
      else if (lookup.required) return quarantine('LOOKUP_MISSING', 'PatientID has no entry in the required lookup table');
    }

    const identifiers: Identifier[] = [];
    collectIdentifiers(top, dataset.src, this.rules, 0, identifiers);
    const metaSop = instance.meta && findElement(instance.meta.elements, T.MediaStorageSOPInstanceUID);
    if (metaSop && instance.meta) identifiers.push(...identifiersOf(T.SOPInstanceUID, 'UI', instance.meta.src.slice(metaSop.valueStart, metaSop.valueStart + metaSop.length), 'MediaStorageSOPInstanceUID'));
    const guarded = this.settings.options.has('retainUIDs') && this.settings.profile === 'basic' ? identifiers.filter((i) => i.kind !== 'uid') : identifiers;

    const stats = emptyStats();
    const shiftDates = this.settings.profile === 'basic' && this.settings.options.has('retainLongModifiedDates');
    const env = {
      pseudo: this.pseudo,
      patientPseudonym,
      dateOffset: shiftDates ? this.pseudo.dateOffsetDays(patientKey, this.settings.dateShiftDays) : null,
      identifiers: guarded,
      stats,
    };
    const { nodes } = walk(top, dataset.src, dataset.syntax, this.rules, 0, env);
    const present = new Set(top.map((el) => el.tag));
    for (const req of this.rules.required()) {
      if (present.has(req.tag)) continue;
      const value = req.action === 'empty' ? '' : patientPseudonym;
      nodes.push({ kind: 'value', tag: req.tag, vr: req.vr, value: encodeString(value, req.vr) });
    }
    nodes.push(...this.marking(dataset.syntax));
    sortByTag(nodes);

    const retainUids = this.settings.profile === 'basic' && this.settings.options.has('retainUIDs');
    const newUid = (uid: string): string => (retainUids ? uid : this.pseudo.uid(uid));
    const sopInstanceUid = newUid(uids.sop);
    const encoded = encodeNodes(nodes, dataset.syntax);
    const transferSyntaxUid = outputTransferSyntax(instance);
    const meta = encodeFileMeta({ sopClassUid, sopInstanceUid, transferSyntaxUid });

    const leak = findLeak(new BufferSource(meta), 132, new PartsSource(encoded.parts), dataset.syntax, guarded);
    if (leak) return quarantine('LEAK_DETECTED', `leak guard: the output still holds the input's ${leak.identifier} at ${leak.path}`);

    const parts = instance.transferSyntax.deflated ? [deflateEven(new PartsSource(encoded.parts).slice(0, encoded.length))] : encoded.parts;
    return {
      kind: 'forward',
      output: {
        meta,
        parts,
        transferSyntaxUid,
        patientPseudonym,
        sopClassUid,
        studyUid: newUid(uids.study),
        seriesUid: newUid(uids.series),
        sopInstanceUid,
        pixelRange: pixel ? pixelValueRange(pixel) : null,
        stats,
      },
    };
  }
}

/** Deflated datasets are padded with one NUL byte to an even length (PS3.5 A.5). */
function deflateEven(dataset: Buffer): Buffer {
  const z = zlib.deflateRawSync(dataset);
  return z.length % 2 === 0 ? z : Buffer.concat([z, Buffer.alloc(1)]);
}

function sortByTag(nodes: OutNode[]): void {
  nodes.sort((a, b) => a.tag - b.tag);
}

function pixelValueRange(el: DElement): { start: number; end: number } {
  return { start: el.valueStart, end: el.end };
}

/** The syntax the output is really in (a mislabelled input is relabelled to what its bytes are). */
function outputTransferSyntax(instance: Instance): string {
  const ts = instance.transferSyntax;
  if (ts.encapsulated || ts.deflated) return ts.uid;
  const s: Syntax = instance.dataset.syntax;
  if (!s.explicit) return TS.ImplicitLittle;
  return s.little ? TS.ExplicitLittle : TS.ExplicitBig;
}
