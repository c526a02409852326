import { encodeRequest, planStudyRequests, QueryField } from '../query-plan';
import type { ExportQuery } from '../types';

/**
 * QIDO-RS query parameters. Which study requests to send and how their answers are checked is
 * ../query-plan.ts; what is QIDO's alone is here: one study UID per request (values cannot be
 * listed, see qidoValue), values as the server reads them, and the fields to include.
 */
export type Param = [string, string];

const STUDY_FIELDS = ['StudyInstanceUID', 'PatientID', 'AccessionNumber', 'StudyDate', 'StudyDescription', 'ModalitiesInStudy', 'NumberOfStudyRelatedInstances'];
const SERIES_FIELDS = ['SeriesInstanceUID', 'Modality', 'NumberOfSeriesRelatedInstances'];
const INSTANCE_FIELDS = ['SOPInstanceUID', 'SOPClassUID'];

const includeFields = (fields: string[]): Param[] => fields.map((f): Param => ['includefield', f]);
export const SERIES_PARAMS = includeFields(SERIES_FIELDS);
export const INSTANCE_PARAMS = includeFields(INSTANCE_FIELDS);

/** One QIDO /studies query (before paging) and the query fields it sends exactly (see studyMatches). */
export interface StudyQuery {
  params: Param[];
  sent: Set<QueryField>;
}

export function studyQueries(q: ExportQuery): StudyQuery[] {
  return planStudyRequests(q, 1).map((req) => {
    // One value per key: planned with one study UID per request.
    const { keys, sent } = encodeRequest(req, qidoValue);
    return { params: [...keys.map((k): Param => [k.keyword, k.values[0]]), ...includeFields(STUDY_FIELDS)], sent };
  });
}

/** `?k=v&...` with every value made safe to send as it is (qidoValue). */
export function queryString(params: Param[]): string {
  return params.length ? `?${params.map(([k, v]) => `${k}=${qidoValue(v)}`).join('&')}` : '';
}

/**
 * A QIDO value as sent, with nothing percent-encoded: Orthanc 1.10 + DICOMweb 1.7 does not
 * decode query values (`Knee%20MR` matches nothing, measured). A character outside
 * `[A-Za-z0-9-._~*?]` (space, comma - QIDO's value separator -, slash, ...) becomes the
 * wildcard `?`, a non-ASCII one `*` (its length in the PACS's character set is unknown). The
 * server then matches a superset, and studyMatches() checks the answers exactly.
 */
export function qidoValue(v: string): string {
  return [...v].map((c) => (/^[A-Za-z0-9\-._~*?]$/.test(c) ? c : c.charCodeAt(0) < 0x80 ? '?' : '*')).join('').replace(/\*+/g, '*');
}
