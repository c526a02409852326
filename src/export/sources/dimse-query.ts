import type { Dataset } from 'dcmjs-dimse';
import { chunks, encodeRequest, planStudyRequests, QueryField } from '../query-plan';
import type { ExportQuery, InstanceRef, SeriesRef, StudyRef } from '../types';

/**
 * C-FIND / C-MOVE / C-GET identifiers (dcmjs-dimse naturalized form: keyword -> value, a list
 * for several values, '' for a return key) and what comes back, as plain functions.
 *
 * dcmjs parses and naturalizes the small query answers: harmless there (only a few strings are
 * read); never the retrieved instances.
 */
export type Identifier = Record<string, string | string[]>;

/**
 * UIDs per request for UID list matching (PS3.4 C.2.2.2.2: StudyInstanceUID on a study query,
 * SOPInstanceUID on an IMAGE-level retrieve). Keeps each identifier small (UI values are up to
 * 64 bytes; the element length field of explicit VR UI is 16 bits).
 */
export const UIDS_PER_REQUEST = 100;

// ---------------------------------------------------------------- studies

/** One study-level C-FIND and the query fields it sends exactly (see studyMatches). */
export interface StudyFind {
  identifier: Identifier;
  sent: Set<QueryField>;
}

/**
 * The C-FIND requests of a study query: the requests of ../query-plan.ts (study UIDs in chunks
 * of UIDS_PER_REQUEST) on top of every return key, the description as pacsPattern makes it.
 */
export function studyFinds(q: ExportQuery): StudyFind[] {
  return planStudyRequests(q, UIDS_PER_REQUEST).map((req) => {
    const { keys, sent } = encodeRequest(req, (v, k) => (k.field === 'studyDescription' ? pacsPattern(v) : v));
    const identifier: Identifier = { ...STUDY_RETURN_KEYS };
    for (const k of keys) identifier[k.keyword] = k.values.length === 1 ? k.values[0] : k.values;
    return { identifier, sent };
  });
}

const STUDY_RETURN_KEYS: Identifier = {
  QueryRetrieveLevel: 'STUDY',
  StudyInstanceUID: '',
  PatientID: '',
  AccessionNumber: '',
  StudyDate: '',
  StudyDescription: '',
  ModalitiesInStudy: '',
  NumberOfStudyRelatedInstances: '',
};

/**
 * The description pattern as sent to the PACS. DICOM wildcard matching is case-sensitive
 * (Orthanc: `*brain*` does not match "Brain MRI") while ours is not, so every letter becomes
 * `?`: the PACS returns a superset that studyMatches narrows. A pattern with non-ASCII text is
 * not sent at all: `?` may stand for one byte or one character depending on the PACS.
 */
export function pacsPattern(pattern: string): string {
  if (!pattern) return '';
  if (/[^\x20-\x7e]/.test(pattern)) return '';
  return pattern.replace(/[A-Za-z]/g, '?');
}

export function studyOf(ds: Dataset | undefined): StudyRef | undefined {
  const e = elements(ds);
  const studyUid = text(e.StudyInstanceUID);
  if (!studyUid) return undefined;
  return compact({
    studyUid,
    patientId: text(e.PatientID),
    accessionNumber: text(e.AccessionNumber),
    studyDate: text(e.StudyDate),
    studyDescription: text(e.StudyDescription),
    modalities: list(e.ModalitiesInStudy),
    numberOfInstances: count(e.NumberOfStudyRelatedInstances),
  });
}

// ---------------------------------------------------------------- series and instances

export function seriesIdentifier(studyUid: string): Identifier {
  return { QueryRetrieveLevel: 'SERIES', StudyInstanceUID: studyUid, SeriesInstanceUID: '', Modality: '', NumberOfSeriesRelatedInstances: '' };
}

export function seriesOf(ds: Dataset | undefined, studyUid: string): SeriesRef | undefined {
  const e = elements(ds);
  const seriesUid = text(e.SeriesInstanceUID);
  if (!seriesUid || !sameOrAbsent(text(e.StudyInstanceUID), studyUid)) return undefined;
  return compact({ studyUid, seriesUid, modality: text(e.Modality), numberOfInstances: count(e.NumberOfSeriesRelatedInstances) });
}

export function instanceIdentifier(studyUid: string, seriesUid: string): Identifier {
  return { QueryRetrieveLevel: 'IMAGE', StudyInstanceUID: studyUid, SeriesInstanceUID: seriesUid, SOPInstanceUID: '', SOPClassUID: '' };
}

export function instanceOf(ds: Dataset | undefined, studyUid: string, seriesUid: string): InstanceRef | undefined {
  const e = elements(ds);
  const sopInstanceUid = text(e.SOPInstanceUID);
  if (!sopInstanceUid || !sameOrAbsent(text(e.SeriesInstanceUID), seriesUid)) return undefined;
  return compact({ studyUid, seriesUid, sopInstanceUid, sopClassUid: text(e.SOPClassUID) });
}

export const sopClassOf = (ds: Dataset | undefined): string | undefined => text(elements(ds).SOPClassUID);

/** An answer about another study or series than asked (a PACS ignoring a key) is dropped. */
const sameOrAbsent = (got: string | undefined, wanted: string): boolean => got === undefined || got === wanted;

// ---------------------------------------------------------------- retrieves

/** One C-MOVE / C-GET request and how many instances it should bring (when known). */
export interface RetrieveTarget {
  identifier: Identifier;
  expected?: number;
}

export function seriesTarget(s: SeriesRef): RetrieveTarget {
  return { identifier: { QueryRetrieveLevel: 'SERIES', StudyInstanceUID: s.studyUid, SeriesInstanceUID: s.seriesUid }, expected: s.numberOfInstances };
}

/** IMAGE-level requests: per series, the SOP Instance UIDs as UID lists of at most UIDS_PER_REQUEST. */
export function instanceTargets(instances: InstanceRef[]): RetrieveTarget[] {
  const bySeries = new Map<string, InstanceRef[]>();
  for (const i of instances) {
    const key = `${i.studyUid}\\${i.seriesUid}`;
    bySeries.set(key, [...(bySeries.get(key) ?? []), i]);
  }
  return [...bySeries.values()].flatMap((list) =>
    chunks([...new Set(list.map((i) => i.sopInstanceUid))], UIDS_PER_REQUEST).map((sops) => ({
      identifier: { QueryRetrieveLevel: 'IMAGE', StudyInstanceUID: list[0].studyUid, SeriesInstanceUID: list[0].seriesUid, SOPInstanceUID: sops.length === 1 ? sops[0] : sops },
      expected: sops.length,
    })),
  );
}

// ---------------------------------------------------------------- helpers

function elements(ds: Dataset | undefined): Record<string, unknown> {
  try {
    return ds?.getElements() ?? {};
  } catch {
    return {};
  }
}

/** A naturalized value as text: '' and absent are both undefined ("not returned"). */
function text(v: unknown): string | undefined {
  const s = (Array.isArray(v) ? v.join('\\') : v === undefined || v === null ? '' : String(v)).trim();
  return s === '' ? undefined : s;
}

function list(v: unknown): string[] | undefined {
  const l = (Array.isArray(v) ? v : [v]).map((x) => text(x)).filter((x): x is string => x !== undefined);
  return l.length ? l.flatMap((x) => x.split('\\')) : undefined;
}

function count(v: unknown): number | undefined {
  const n = Number(text(v));
  return text(v) !== undefined && Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** Drops the undefined properties (answers only carry what the PACS returned). */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
