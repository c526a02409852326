import { EDITION } from '../deid/profiles/edition.generated';
import { JobProgress, JobStatus } from './job-progress';

/**
 * What a research data manager keeps with an export: what was asked (criteria counts, never the
 * values), the profile and options under which standard edition, and every delivered instance by
 * its new UIDs with the SHA-256 of its Pixel Data (equal to the source's: pixels are never changed).
 */
export function buildManifest(job: JobProgress, s: JobStatus): unknown {
  const studies = new Map<string, Map<string, { newSopInstanceUid: string; sopClassUid: string; pixelSha256: string | null }[]>>();
  for (const o of job.outputs()) {
    let series = studies.get(o.newStudyUid);
    if (!series) studies.set(o.newStudyUid, (series = new Map()));
    let rows = series.get(o.newSeriesUid);
    if (!rows) series.set(o.newSeriesUid, (rows = []));
    if (!rows.some((r) => r.newSopInstanceUid === o.newSopInstanceUid)) {
      rows.push({ newSopInstanceUid: o.newSopInstanceUid, sopClassUid: o.sopClassUid, pixelSha256: o.pixelSha256 });
    }
  }
  const r = job.record.route;
  return {
    job: s.id,
    state: s.state,
    createdAt: s.createdAt,
    finishedAt: s.finishedAt,
    requestedBy: s.requestedBy,
    source: s.source,
    route: r.name,
    profile: r.profile,
    options: r.options,
    overrides: r.overrides.map((o) => ({ tag: o.tag, action: o.action })),
    destinations: r.destinations,
    standard: `DICOM PS3.15 ${EDITION} Annex E`,
    counts: { studies: s.studies, series: s.series, instances: s.instances, bytes: s.bytes },
    errors: s.errors,
    studies: [...studies].map(([newStudyUid, series]) => ({
      newStudyUid,
      series: [...series].map(([newSeriesUid, instances]) => ({ newSeriesUid, instances })),
    })),
  };
}
