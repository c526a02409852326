import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Config, RouteConfig, RouteSchema } from '../config/schema';
import { OPTION_NAMES } from '../deid/profiles/types';
import { ExportQuery } from './types';

const date = z.string().regex(/^\d{8}$/, 'a date as YYYYMMDD');
const values = (what: RegExp, message: string) => z.array(z.string().regex(what, message)).min(1).max(100_000);
/** A DICOM LO/SH value without the characters a query language would read as operators. */
const PLAIN = /^[^\\*?]{1,64}$/;

export const ExportQuerySchema = z.object({
  patientIds: values(PLAIN, 'a Patient ID without \\ * ?').optional(),
  accessionNumbers: values(PLAIN, 'an Accession Number without \\ * ?').optional(),
  studyUids: values(/^[0-9]+(\.[0-9]+)*$/, 'a UID (digits and dots)').optional(),
  studyDate: z.object({ from: date.optional(), to: date.optional() }).strict()
    .refine((d) => d.from || d.to, { message: 'give from, to or both' })
    .refine((d) => !d.from || !d.to || d.from <= d.to, { message: 'from must not be after to' })
    .optional(),
  modalitiesInStudy: z.array(z.string().regex(/^[A-Z0-9_]{1,16}$/, 'a modality code such as CT')).min(1).max(64).optional(),
  studyDescription: z.string().min(1).max(64).optional(),
}).strict().refine((q) => Object.keys(q).length > 0, { message: 'a query needs at least one criterion (an empty query would export the whole PACS)' });

export const ExportRequestSchema = z.object({
  source: z.string().min(1),
  query: ExportQuerySchema,
  /** A configured route (its profile, options and destinations)... */
  route: z.string().optional(),
  /** ...or a profile and destinations for this job only. */
  profile: z.enum(['pixel-only', 'basic']).optional(),
  options: z.array(z.enum(OPTION_NAMES)).optional(),
  destinations: z.array(z.string()).min(1).optional(),
}).strict();

export type ExportRequest = z.infer<typeof ExportRequestSchema>;

export class ExportRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportRequestError';
  }
}

/** The first problem, with the field named (`query.studyDate: from must not be after to`). */
export function parseExportRequest(body: unknown): ExportRequest {
  const r = ExportRequestSchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ExportRequestError(`${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return r.data;
}

/** The route a job's instances take: a configured one, or one made of the request's profile and destinations. */
export function routeForRequest(req: ExportRequest, config: Config, jobId: string): RouteConfig {
  if (!config.sources[req.source]) throw new ExportRequestError(`source: unknown source "${req.source}"`);
  if (req.route !== undefined) {
    if (req.profile || req.options || req.destinations) throw new ExportRequestError('route: give a route, or a profile and destinations, not both');
    const route = config.routes.find((r) => r.name === req.route);
    if (!route) throw new ExportRequestError(`route: unknown route "${req.route}"`);
    if (route.drop) throw new ExportRequestError(`route: route "${req.route}" drops everything`);
    return route;
  }
  if (!req.destinations) throw new ExportRequestError('destinations: give a route, or destinations (and a profile)');
  for (const d of req.destinations) if (!config.destinations[d]) throw new ExportRequestError(`destinations: unknown destination "${d}"`);
  const r = RouteSchema.safeParse({ name: `export-${jobId}`, profile: req.profile ?? 'pixel-only', options: req.options ?? [], destinations: req.destinations });
  if (!r.success) throw new ExportRequestError(`profile: ${r.error.issues[0].message}`);
  if (r.data.options.length && r.data.profile !== 'basic') throw new ExportRequestError('options: Table E.1-1 options apply to the basic profile only');
  return r.data;
}

/** What the audit may say about a query: which criteria, how many values, never the values. */
export function describeQuery(q: ExportQuery): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  if (q.patientIds) out.patientIds = q.patientIds.length;
  if (q.accessionNumbers) out.accessionNumbers = q.accessionNumbers.length;
  if (q.studyUids) out.studyUids = q.studyUids.length;
  // A date range and modality codes select many patients' studies: not identifying.
  if (q.studyDate) out.studyDate = `${q.studyDate.from ?? ''}-${q.studyDate.to ?? ''}`;
  if (q.modalitiesInStudy) out.modalitiesInStudy = q.modalitiesInStudy.join(',');
  if (q.studyDescription) out.studyDescription = 1;
  return out;
}

/** Stable JSON of the query, for its keyed hash. */
export function canonicalQuery(q: ExportQuery): string {
  const sorted = Object.fromEntries(Object.entries(q).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify(sorted);
}

export const sha256 = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex');
