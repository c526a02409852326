import { ExportQuery, SourceError, StudyRef } from './types';

/**
 * Study queries, planned once for every protocol, and the one check of their answers on our
 * side. A source only encodes the requests (QIDO-RS parameters, C-FIND identifiers) and turns
 * each answer into a StudyRef; which requests to send and which answers to keep is decided here.
 *
 * Plan: one request per value of the most selective list of the query, or per chunk of study
 * UIDs where the protocol has UID list matching (C-FIND). The other lists are sent only when
 * they hold a single value, so that a request never depends on how a PACS treats several values
 * of a non-UID attribute; dates and the description go with every request. Whatever a request
 * cannot say, or says more loosely than asked, is checked on the answers (studyMatches): a PACS
 * may ignore keys, match case-insensitively (Orthanc: PatientID) or match a widened pattern.
 */

export type QueryField = keyof ExportQuery;
type ListField = 'studyUids' | 'accessionNumbers' | 'patientIds' | 'modalitiesInStudy';

/** The attribute each query field constrains, by DICOM keyword (a QIDO parameter and a C-FIND key alike). */
export const KEYWORDS = {
  studyUids: 'StudyInstanceUID',
  accessionNumbers: 'AccessionNumber',
  patientIds: 'PatientID',
  modalitiesInStudy: 'ModalitiesInStudy',
  studyDate: 'StudyDate',
  studyDescription: 'StudyDescription',
} as const satisfies Record<QueryField, string>;
export type StudyKeyword = (typeof KEYWORDS)[QueryField];

/** One matching key of a request, before a protocol encodes it. */
export interface MatchingKey {
  field: QueryField;
  keyword: StudyKeyword;
  /** One value; several only for a chunk of study UIDs (UID list matching). */
  values: string[];
}

/** One study-level request: its matching keys, in the order they are sent. */
export interface StudyRequest {
  keys: MatchingKey[];
}

/**
 * The lists, most selective first: a study UID names one study, an accession number about one,
 * a patient ID a few, a modality thousands. Ties in the number of requests go to the first.
 */
const LISTS: readonly ListField[] = ['studyUids', 'accessionNumbers', 'patientIds', 'modalitiesInStudy'];

interface QueryList {
  field: ListField;
  values: string[];
}

/**
 * The requests for `q`. The driving list is the ID list (study UIDs, accession numbers, patient
 * IDs) needing the fewest requests (`uidsPerRequest` study UIDs per request, one value per
 * request otherwise); modalities drive only a query without any ID list, since one modality
 * may bring most of the PACS. None when a list is empty: an empty OR matches nothing. Throws a
 * permanent SourceError for a value that a PACS would not match literally (never echoed: PHI).
 */
export function planStudyRequests(q: ExportQuery, uidsPerRequest: number): StudyRequest[] {
  const lists = LISTS.filter((field) => q[field] !== undefined).map((field): QueryList => ({ field, values: listValues(q, field) }));
  if (lists.some((l) => !l.values.length)) return [];
  const common: MatchingKey[] = [];
  const range = dateRange(q.studyDate);
  if (range) common.push(key('studyDate', [range]));
  const pattern = q.studyDescription?.trim();
  if (pattern) common.push(key('studyDescription', [pattern]));
  const requests = (l: QueryList): number => (l.field === 'studyUids' ? Math.ceil(l.values.length / uidsPerRequest) : l.values.length);
  const driver = lists
    .filter((l) => l.field !== 'modalitiesInStudy')
    .reduce<QueryList | undefined>((best, l) => (best && requests(best) <= requests(l) ? best : l), undefined)
    ?? lists.find((l) => l.field === 'modalitiesInStudy');
  for (const l of lists) if (l !== driver && l.values.length === 1) common.push(key(l.field, l.values));
  if (!driver) return [{ keys: common }];
  const perRequest = driver.field === 'studyUids' ? chunks(driver.values, uidsPerRequest) : driver.values.map((v) => [v]);
  return perRequest.map((values) => ({ keys: [...common, key(driver.field, values)] }));
}

function key(field: QueryField, values: string[]): MatchingKey {
  return { field, keyword: KEYWORDS[field], values };
}

/**
 * A list's values, trimmed, without repeats (modalities in upper case). An empty value would be
 * a universal match, `\` several values, `*` and `?` wildcards: refused.
 */
function listValues(q: ExportQuery, field: ListField): string[] {
  const values = q[field]!.map((v) => (field === 'modalitiesInStudy' ? v.trim().toUpperCase() : v.trim()));
  if (values.some((v) => !v || /[\\*?]/.test(v))) throw new SourceError(`${field}: an empty value, or one holding \\, * or ?`, false);
  return [...new Set(values)];
}

/**
 * A request as a protocol sends it. `encode` gives each value as it goes on the wire ('' when
 * the protocol cannot send it: the key is then left out). A field is `sent` when every value
 * went out unchanged, i.e. the server was asked exactly our condition, not a wider one.
 */
export function encodeRequest(req: StudyRequest, encode: (value: string, key: MatchingKey) => string): { keys: Array<{ keyword: StudyKeyword; values: string[] }>; sent: Set<QueryField> } {
  const keys: Array<{ keyword: StudyKeyword; values: string[] }> = [];
  const sent = new Set<QueryField>();
  for (const k of req.keys) {
    const values = k.values.map((v) => encode(v, k));
    if (values.some((v) => !v)) continue;
    keys.push({ keyword: k.keyword, values });
    if (values.every((v, i) => v === k.values[i])) sent.add(k.field);
  }
  return { keys, sent };
}

export function chunks<T>(values: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += size) out.push(values.slice(i, i + size));
  return out;
}

const DATE = /^\d{8}$/;

/** DICOM range matching: `from-to`, `from-` or `-to`; undefined without any bound. */
export function dateRange(d: ExportQuery['studyDate']): string | undefined {
  if (!d?.from && !d?.to) return undefined;
  for (const [end, v] of [['from', d.from], ['to', d.to]] as const) {
    if (v && !DATE.test(v)) throw new SourceError(`studyDate.${end} is not YYYYMMDD`, false);
  }
  return `${d.from ?? ''}-${d.to ?? ''}`;
}

/** A DICOM wildcard pattern (PS3.4 C.2.2.2.4: `*` any run, `?` one character) as an anchored, case-insensitive RegExp. */
export function wildcardRegExp(pattern: string): RegExp {
  const body = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, 'isu');
}

// ---------------------------------------------------------------- the check on our side

/** A condition on one answer: true/false, or undefined when the answer lacks what it needs. */
type Verdict = boolean | undefined;

/** One check per query field (the Record makes a new ExportQuery field a compile error here). */
const CHECKS: Record<QueryField, (s: StudyRef, q: ExportQuery) => Verdict> = {
  studyUids: (s, q) => inList(q.studyUids, s.studyUid),
  accessionNumbers: (s, q) => inList(q.accessionNumbers, s.accessionNumber),
  patientIds: (s, q) => inList(q.patientIds, s.patientId),
  studyDate: (s, q) => inDateRange(q.studyDate, s.studyDate),
  modalitiesInStudy: (s, q) => anyModality(q.modalitiesInStudy, s.modalities),
  studyDescription: (s, q) => matchesPattern(q.studyDescription, s.studyDescription),
};

/**
 * Does this answer satisfy the whole query? Every attribute the answer holds is checked. An
 * attribute missing from the answer (or unreadable, like a date that is not YYYYMMDD):
 *
 * - a condition that an empty value satisfies (a description pattern such as `*`) holds;
 * - otherwise the study is kept only if the request that found it sent exactly that condition
 *   (`sent`, see encodeRequest), and left out when the condition was checked here only: a list
 *   of several values not sent, or a pattern the protocol widened (C-FIND letters as `?`, QIDO
 *   characters as wildcards).
 *
 * Why this rule for both protocols (the DIMSE source used to keep every study lacking the
 * attribute, the DICOMweb source already applied it): when the PACS was asked the exact
 * condition and still returned the study, it matched the study on its own data and only did
 * not return the attribute; leaving the study out would silently lose a study that was asked
 * for. When the condition was never put to the PACS, nobody has checked it, and the usual
 * reason for the gap is that the study has no such value (no accession number, no
 * description): keeping it would hand the research data manager a study outside the query
 * (e.g. every accession-less study of a patient whose query listed three accession numbers).
 */
export function studyMatches(s: StudyRef, q: ExportQuery, sent: ReadonlySet<QueryField>): boolean {
  return (Object.keys(CHECKS) as QueryField[]).every((f) => CHECKS[f](s, q) ?? sent.has(f));
}

function inList(values: string[] | undefined, got: string | undefined): Verdict {
  if (values === undefined) return true;
  return got === undefined ? undefined : values.some((v) => v.trim() === got);
}

function inDateRange(range: ExportQuery['studyDate'], got: string | undefined): Verdict {
  if (!range?.from && !range?.to) return true;
  // Old-style values (`2024.01.05`) compare once reduced to their digits.
  const d = got?.replace(/\D/g, '');
  if (!d || !DATE.test(d)) return undefined;
  return (!range.from || d >= range.from) && (!range.to || d <= range.to);
}

function anyModality(wanted: string[] | undefined, got: string[] | undefined): Verdict {
  if (wanted === undefined) return true;
  if (!got?.length) return undefined;
  const have = new Set(got.map((m) => m.toUpperCase()));
  return wanted.some((m) => have.has(m.trim().toUpperCase()));
}

function matchesPattern(pattern: string | undefined, got: string | undefined): Verdict {
  if (!pattern?.trim()) return true;
  const re = wildcardRegExp(pattern.trim());
  if (got === undefined) return re.test('') ? true : undefined;
  return re.test(got);
}

/** The studies a query's requests found: each once, and only those matching the whole query. */
export class FoundStudies {
  readonly #byUid = new Map<string, StudyRef>();

  constructor(private readonly query: ExportQuery) {}

  /** An answer of the request that sent `sent` (see encodeRequest); null/undefined: an answer without a study UID. */
  add(study: StudyRef | null | undefined, sent: ReadonlySet<QueryField>): void {
    if (study && !this.#byUid.has(study.studyUid) && studyMatches(study, this.query, sent)) this.#byUid.set(study.studyUid, study);
  }

  list(): StudyRef[] {
    return [...this.#byUid.values()];
  }
}
