import { z } from 'zod';
import { OPTION_NAMES } from '../deid/profiles/types';
import { PIXEL_RISKS } from '../deid/settings';

/**
 * The gateway configuration. Every field has a default so the embedded config stays short;
 * secrets are never here: only paths of secret files or names of environment variables.
 * @see config/default.yaml and config/example-deployment.yaml
 */

const aeTitle = z.string().regex(/^[\x20-\x5b\x5d-\x7e]{1,16}$/, 'an AE title: 1-16 printable characters, no backslash').transform((s) => s.trim());
/** 0 lets the OS choose (tests); the chosen port is printed at start. */
const port = z.number().int().min(0).max(65535);
const durationMs = z.number().int().min(0);

export const TlsSchema = z.object({
  enabled: z.boolean().default(false),
  certFile: z.string().optional(),
  keyFile: z.string().optional(),
  caFile: z.string().optional(),
  /** Ask for and verify a client certificate (mutual TLS). */
  requireClientCert: z.boolean().default(false),
}).strict().refine((t) => !t.enabled || (t.certFile && t.keyFile), { message: 'tls.enabled needs certFile and keyFile' });

export const CallerSchema = z.object({
  aeTitle,
  /** IPv4/IPv6 addresses or CIDR blocks the AE may connect from; empty = any address. */
  hosts: z.array(z.string()).default([]),
}).strict();

export const DimseIngestSchema = z.object({
  aeTitle: aeTitle.default('DEIDGW'),
  /** Address to bind; the embedded default stays on loopback. */
  host: z.string().default('127.0.0.1'),
  port: port.default(11112),
  maxAssociations: z.number().int().min(1).max(1000).default(16),
  /** Known callers; any other calling AE is rejected (A-ASSOCIATE-RJ) and audited. */
  callers: z.array(CallerSchema).default([]),
  /** Accept any calling AE (still subject to called-AE match). Off by default. */
  acceptAnyCaller: z.boolean().default(false),
  /** Restrict accepted storage SOP classes / transfer syntaxes; empty = all. */
  sopClasses: z.array(z.string()).default([]),
  transferSyntaxes: z.array(z.string()).default([]),
  maxPduLength: z.number().int().min(4096).default(262144),
  tls: TlsSchema.default({ enabled: false, requireClientCert: false }),
}).strict();

export const SpoolSchema = z.object({
  dir: z.string().default('var/spool'),
  /** Refuse new instances (DIMSE 0xA700) when the spool file system is fuller than this. */
  highWaterPercent: z.number().min(1).max(100).default(90),
  /** ... or has less free space than this. */
  minFreeMB: z.number().min(0).default(512),
  /** De-identification worker threads. */
  workers: z.number().int().min(1).max(64).default(2),
  /**
   * How much lower the background threads' scheduling priority is than the process's (Linux
   * niceness, per thread; 0 = the same): the de-identification workers and V8's compiler and
   * GC helper threads. When the CPU is short, receiving and acknowledging instances goes first
   * and the rest uses what is left; the spool holds the backlog.
   */
  workerNice: z.number().int().min(0).max(19).default(10),
  /** Instances in flight between spool and destinations (backpressure bound). */
  maxInFlight: z.number().int().min(1).max(10000).default(64),
  /** fsync received files before answering Success (off only for benchmarks). */
  fsync: z.boolean().default(true),
}).strict();

const TagCondition = z.union([
  z.object({ tag: z.string(), equals: z.string() }).strict(),
  z.object({ tag: z.string(), regex: z.string() }).strict(),
  z.object({ tag: z.string(), present: z.boolean() }).strict(),
]);

export const MatchSchema = z.object({
  callingAE: z.string().optional(),
  calledAE: z.string().optional(),
  /** Source address or CIDR. */
  sourceIp: z.string().optional(),
  modality: z.array(z.string()).optional(),
  sopClass: z.array(z.string()).optional(),
  tags: z.array(TagCondition).default([]),
}).strict();

export const OverrideSchema = z.object({
  tag: z.string(),
  action: z.enum(['keep', 'remove', 'empty', 'replace']),
  value: z.string().optional(),
}).strict().refine((o) => o.action !== 'replace' || o.value !== undefined, { message: 'replace needs a value' });

export const RouteSchema = z.object({
  name: z.string().min(1),
  match: MatchSchema.default({ tags: [] }),
  /** Drop matching instances (audited) instead of forwarding them. */
  drop: z.boolean().default(false),
  profile: z.enum(['pixel-only', 'basic']).default('pixel-only'),
  options: z.array(z.enum(OPTION_NAMES)).default([]),
  overrides: z.array(OverrideSchema).default([]),
  acceptRisks: z.array(z.enum(PIXEL_RISKS)).default([]),
  /** Names of destinations (keys of `destinations`). */
  destinations: z.array(z.string()).default([]),
}).strict();

const Auth = z.union([
  z.object({ type: z.literal('bearer'), tokenFile: z.string().optional(), tokenEnv: z.string().optional() }).strict(),
  z.object({ type: z.literal('basic'), username: z.string(), passwordFile: z.string().optional(), passwordEnv: z.string().optional() }).strict(),
]);

export const DestinationSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('folder'), path: z.string() }).strict(),
  z.object({
    type: z.literal('stow-rs'),
    url: z.string().url(),
    auth: Auth.optional(),
    /** Instances per STOW-RS request (one study per request). */
    batchSize: z.number().int().min(1).max(1000).default(20),
    maxBatchMB: z.number().min(1).default(64),
    timeoutMs: durationMs.default(60000),
    tls: z.object({ caFile: z.string().optional(), rejectUnauthorized: z.boolean().default(true) }).strict().default({ rejectUnauthorized: true }),
  }).strict(),
  z.object({
    type: z.literal('c-store'),
    aeTitle,
    host: z.string(),
    port,
    callingAeTitle: aeTitle.default('DEIDGW'),
    timeoutMs: durationMs.default(30000),
  }).strict(),
]);

/** How hard a clinical PACS may be pulled on, shared by every export job using the source. */
const sourceLimits = {
  /** Requests (QIDO/WADO-RS, C-FIND/C-MOVE/C-GET associations) in flight at once. */
  maxConcurrent: z.number().int().min(1).max(64).default(2),
  /** Requests started per second; 0 = unlimited. */
  requestsPerSecond: z.number().min(0).default(10),
};

export const SourceSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('dicomweb'),
    /** DICOMweb root, e.g. https://pacs.example.org/dicom-web (QIDO-RS and WADO-RS below it). */
    url: z.string().url(),
    auth: Auth.optional(),
    tls: z.object({ caFile: z.string().optional(), rejectUnauthorized: z.boolean().default(true) }).strict().default({ rejectUnauthorized: true }),
    /** QIDO-RS page size (limit/offset paging). */
    pageSize: z.number().int().min(1).max(5000).default(100),
    /** Socket idle timeout of one request. */
    timeoutMs: durationMs.default(60000),
    ...sourceLimits,
  }).strict(),
  z.object({
    type: z.literal('dimse'),
    aeTitle,
    host: z.string(),
    port,
    /** Our AE title towards the PACS; the gateway's own dimse.aeTitle when absent. */
    callingAeTitle: aeTitle.optional(),
    /** c-move: the PACS sends to the gateway's own SCP (moveDestination); c-get: on the same association. */
    retrieve: z.enum(['c-move', 'c-get']).default('c-move'),
    /** The AE title the PACS knows the gateway's SCP by; dimse.aeTitle when absent. */
    moveDestination: aeTitle.optional(),
    timeoutMs: durationMs.default(60000),
    ...sourceLimits,
  }).strict(),
]);

export const ExportsSchema = z.object({
  /** Job records, event logs and manifests (one folder per job). */
  dir: z.string().default('var/exports'),
  /** Jobs running at once; the others wait in state "queued". */
  maxRunningJobs: z.number().int().min(1).max(64).default(2),
  /** Series retrieved at once within one job (the source's limits apply on top). */
  seriesConcurrency: z.number().int().min(1).max(64).default(2),
  /** A source that fails (down, 5xx, association refused) is retried this many times per request. */
  maxAttempts: z.number().int().min(1).default(5),
  initialDelayMs: durationMs.default(1000),
  maxDelayMs: durationMs.default(30000),
}).strict();

export const RetrySchema = z.object({
  maxAttempts: z.number().int().min(1).default(10),
  initialDelayMs: durationMs.default(500),
  maxDelayMs: durationMs.default(60000),
  multiplier: z.number().min(1).default(2),
  /** Fraction of each delay randomised (0 = none, 1 = full jitter). */
  jitter: z.number().min(0).max(1).default(0.5),
}).strict();

export const AuditSchema = z.object({
  stdout: z.boolean().default(true),
  file: z.string().optional(),
  /** Rotate the audit file at this size; the chain continues into the next file. */
  maxFileMB: z.number().min(1).default(100),
}).strict();

export const ApiSchema = z.object({
  enabled: z.boolean().default(true),
  host: z.string().default('127.0.0.1'),
  port: port.default(8080),
  /** Bearer tokens: a file with one token per line, or an environment variable. */
  tokenFile: z.string().optional(),
  tokenEnv: z.string().default('DEID_API_TOKEN'),
}).strict();

export const PseudonymSchema = z.object({
  secretFile: z.string().optional(),
  secretEnv: z.string().default('DEID_SECRET'),
  patientIdPrefix: z.string().max(40).default('ANON-'),
  dateShiftDays: z.object({ min: z.number().int(), max: z.number().int() }).strict().refine((r) => r.min <= r.max, { message: 'min must not exceed max' }).default({ min: -3650, max: -365 }),
  lookupCsv: z.string().optional(),
  lookupRequired: z.boolean().default(false),
}).strict();

export const ConfigSchema = z.object({
  dimse: DimseIngestSchema.default(DimseIngestSchema.parse({})),
  spool: SpoolSchema.default(SpoolSchema.parse({})),
  /** first-match: the first matching route wins; fan-out: every matching route gets a copy. */
  routing: z.enum(['first-match', 'fan-out']).default('first-match'),
  routes: z.array(RouteSchema).min(1),
  destinations: z.record(z.string(), DestinationSchema),
  retry: RetrySchema.default(RetrySchema.parse({})),
  audit: AuditSchema.default(AuditSchema.parse({})),
  api: ApiSchema.default(ApiSchema.parse({})),
  pseudonyms: PseudonymSchema.default(PseudonymSchema.parse({})),
  /** Clinical systems export jobs pull from (keys are the names used by jobs). */
  sources: z.record(z.string(), SourceSchema).default({}),
  exports: ExportsSchema.default(ExportsSchema.parse({})),
}).strict().superRefine((c, ctx) => {
  c.routes.forEach((r, i) => {
    for (const d of r.destinations) {
      if (!c.destinations[d]) ctx.addIssue({ code: 'custom', path: ['routes', i, 'destinations'], message: `unknown destination "${d}"` });
    }
    if (!r.drop && r.destinations.length === 0) ctx.addIssue({ code: 'custom', path: ['routes', i], message: 'a route needs destinations or drop: true' });
    if (r.options.includes('retainLongFullDates') && r.options.includes('retainLongModifiedDates')) {
      ctx.addIssue({ code: 'custom', path: ['routes', i, 'options'], message: 'retainLongFullDates and retainLongModifiedDates are alternatives; choose one' });
    }
    if (r.options.length && r.profile !== 'basic') ctx.addIssue({ code: 'custom', path: ['routes', i, 'options'], message: 'Table E.1-1 options apply to the basic profile only' });
  });
});

export type Config = z.infer<typeof ConfigSchema>;
export type DestinationConfig = z.infer<typeof DestinationSchema>;
export type RouteConfig = z.infer<typeof RouteSchema>;
export type SourceConfig = z.infer<typeof SourceSchema>;
export type ExportsConfig = z.infer<typeof ExportsSchema>;
export type RetryPolicy = z.infer<typeof RetrySchema>;
