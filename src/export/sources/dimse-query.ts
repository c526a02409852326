import type { Dataset } from 'dcmjs-dimse';
import { ExportQuery, InstanceRef, SeriesRef, SourceError, StudyRef } from '../types';

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

/**
 * The identifiers of a study query: one request per value of one list (the most selective one
 * present: study UIDs in chunks, accession numbers, patient IDs, modalities), the other lists
 * sent only when they hold a single value, so that a request never depends on how a PACS
 * treats several values of a non-UID attribute. What a request cannot say is checked on the
 * answers (studyMatches).
 */
export function studyIdentifiers(q: ExportQuery): Identifier[] {
  const lists = queryLists(q);
  const base: Identifier = {
    QueryRetrieveLevel: 'STUDY',
    StudyInstanceUID: '',
    PatientID: '',
    AccessionNumber: '',
    StudyDate: dateRange(q.studyDate),
    StudyDescription: pacsPattern(q.studyDescription ?? ''),
    ModalitiesInStudy: '',
    NumberOfStudyRelatedInstances: '',
  };
  const driving = lists.find((l) => l.values.length > 0);
  for (const l of lists) if (l !== driving && l.values.length === 1) base[l.key] = l.values[0];
  if (!driving) return [base];
  const values = driving.key === 'StudyInstanceUID' ? chunks(driving.values, UIDS_PER_REQUEST) : driving.values;
  return values.map((v) => ({ ...base, [driving.key]: v }));
}

interface QueryList {
  key: 'StudyInstanceUID' | 'AccessionNumber' | 'PatientID' | 'ModalitiesInStudy';
  values: string[];
}

/** The query's lists, most selective first, each value checked (never echoed: PHI). */
function queryLists(q: ExportQuery): QueryList[] {
  const list = (key: QueryList['key'], values: string[] | undefined, field: string): QueryList => {
    const v = (values ?? []).map((x) => x.trim());
    // An empty value would be a universal match; a backslash would make several values.
    if (v.some((x) => x === '' || x.includes('\\'))) throw new SourceError(`C-FIND: ${field} holds an empty value or a backslash`, false);
    return { key, values: [...new Set(v)] };
  };
  return [
    list('StudyInstanceUID', q.studyUids, 'studyUids'),
    list('AccessionNumber', q.accessionNumbers, 'accessionNumbers'),
    list('PatientID', q.patientIds, 'patientIds'),
    list('ModalitiesInStudy', q.modalitiesInStudy?.map((m) => m.toUpperCase()), 'modalitiesInStudy'),
  ];
}

/** DICOM range matching: `from-to`, `from-`, `-to`; '' (universal) without dates. */
function dateRange(d: ExportQuery['studyDate']): string {
  const from = d?.from ?? '';
  const to = d?.to ?? '';
  for (const x of [from, to]) if (x && !/^\d{8}$/.test(x)) throw new SourceError('C-FIND: studyDate bounds must be YYYYMMDD', false);
  return from || to ? `${from}-${to}` : '';
}

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

/** Does an answer satisfy the query? Each attribute is checked only when the PACS returned it. */
export function studyMatches(s: StudyRef, q: ExportQuery): boolean {
  return (
    inList(s.studyUid, q.studyUids) &&
    inList(s.accessionNumber, q.accessionNumbers) &&
    inList(s.patientId, q.patientIds) &&
    inDateRange(s.studyDate, q.studyDate) &&
    hasModality(s.modalities, q.modalitiesInStudy) &&
    (!q.studyDescription || s.studyDescription === undefined || wildcardRegExp(q.studyDescription).test(s.studyDescription))
  );
}

const inList = (value: string | undefined, list: string[] | undefined): boolean =>
  !list?.length || value === undefined || list.some((x) => x.trim() === value);

function inDateRange(date: string | undefined, range: ExportQuery['studyDate']): boolean {
  // Legacy answers may be "2024.01.31"; anything else unreadable is not judged.
  const d = date?.replace(/\./g, '');
  if (!d || !/^\d{8}$/.test(d)) return true;
  return (!range?.from || d >= range.from) && (!range?.to || d <= range.to);
}

function hasModality(modalities: string[] | undefined, wanted: string[] | undefined): boolean {
  if (!wanted?.length || !modalities?.length) return true;
  const w = new Set(wanted.map((m) => m.toUpperCase()));
  return modalities.some((m) => w.has(m.toUpperCase()));
}

/** A DICOM wildcard pattern (`*` any run, `?` one character) as an anchored, case-insensitive RegExp. */
export function wildcardRegExp(pattern: string): RegExp {
  const body = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, 'isu');
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

function chunks<T>(values: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += size) out.push(values.slice(i, i + size));
  return out;
}

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
