/**
 * Defensive reading of QIDO-RS answers (DICOM JSON, PS3.18 F.2). A PACS may leave out
 * `Value` for an empty attribute, send a PN as `{Alphabetic: ...}`, a number as a string (IS)
 * or a string as a number, use lower-case tag keys, or send a multi-valued CS joined with `\`:
 * every reader here takes whatever it gets and returns undefined rather than throwing.
 */
import type { StudyRef } from '../types';

export type DicomJsonObject = Record<string, unknown>;

export const TAG = {
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDate: '00080020',
  AccessionNumber: '00080050',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  StudyDescription: '00081030',
  PatientID: '00100020',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
} as const;

/** The body of a QIDO-RS answer: an array of objects (anything else in the array is dropped); null when it is not one. */
export function parseDatasets(body: Buffer): DicomJsonObject[] | null {
  const text = body.toString('utf8').trim();
  if (!text) return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(json)) return null;
  return json.filter((x): x is DicomJsonObject => !!x && typeof x === 'object' && !Array.isArray(x));
}

/** The element's `Value` array; undefined when the attribute is not in the object at all. */
function valuesOf(obj: DicomJsonObject, tag: string): unknown[] | undefined {
  const el = obj[tag] ?? obj[tag.toLowerCase()];
  if (!el || typeof el !== 'object') return undefined;
  const v = (el as { Value?: unknown }).Value;
  return Array.isArray(v) ? v : [];
}

/** The attribute is in the object (possibly empty). */
export function has(obj: DicomJsonObject, tag: string): boolean {
  return valuesOf(obj, tag) !== undefined;
}

function asText(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim() || undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (v && typeof v === 'object') {
    // PN: the alphabetic group is the one comparable across systems.
    const a = (v as { Alphabetic?: unknown }).Alphabetic;
    if (typeof a === 'string') return a.trim() || undefined;
  }
  return undefined;
}

/** All non-empty values as text (a single string holding `a\b` is split). */
export function texts(obj: DicomJsonObject, tag: string): string[] {
  const out: string[] = [];
  for (const v of valuesOf(obj, tag) ?? []) {
    for (const part of typeof v === 'string' ? v.split('\\') : [v]) {
      const t = asText(part);
      if (t !== undefined) out.push(t);
    }
  }
  return out;
}

/** The first value as text; undefined when absent or empty. */
export function text(obj: DicomJsonObject, tag: string): string | undefined {
  return texts(obj, tag)[0];
}

/** The first value as a non-negative integer (IS may come as a string). */
export function count(obj: DicomJsonObject, tag: string): number | undefined {
  const t = text(obj, tag);
  return t !== undefined && /^\+?\d+$/.test(t) ? Number(t) : undefined;
}

/** A study-level QIDO answer as a StudyRef; null without a StudyInstanceUID. */
export function toStudyRef(ds: DicomJsonObject): StudyRef | null {
  const studyUid = text(ds, TAG.StudyInstanceUID);
  if (!studyUid) return null;
  const modalities = texts(ds, TAG.ModalitiesInStudy);
  return {
    studyUid,
    patientId: text(ds, TAG.PatientID),
    accessionNumber: text(ds, TAG.AccessionNumber),
    studyDate: text(ds, TAG.StudyDate),
    studyDescription: text(ds, TAG.StudyDescription),
    modalities: modalities.length ? modalities : undefined,
    numberOfInstances: count(ds, TAG.NumberOfStudyRelatedInstances),
  };
}
