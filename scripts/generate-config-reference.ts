// Generates docs/configuration.md from the zod schema in src/config/schema.ts.
//
// The schema decides which fields exist, their types, constraints, defaults and required-ness;
// descriptions and examples come from the schema (`.describe()`, `.meta({ examples })`) or, when
// the schema has none, from the tables below, keyed by the field's path. Rendering fails when a
// field has no description or no example, when an example does not validate against its
// field, or when a table names a field the schema no longer has, so the reference cannot drift:
// test/config/reference.test.ts proves the committed file equals a fresh render.
//
// Run: npm run generate:config-reference   (compiles, then runs dist/scripts/generate-config-reference.js)
//
// Path notation (also explained in the generated page):
//   a.b                    key b of the object at a
//   a[]                    an item of the list a
//   a.<name>               a key of your choosing in the map a
//   a[type=x].b            field b of a when a's `type` is x (one kind of a union)

import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { ConfigSchema } from '../src/config/schema';

export const REFERENCE_FILE = 'docs/configuration.md';

/** The loose view of a zod 4 schema this generator reads (`schema.def`, `check._zod.def`). */
export interface Def {
  type: string;
  innerType?: Schema;
  defaultValue?: unknown;
  in?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  keyType?: Schema;
  valueType?: Schema;
  options?: Schema[];
  discriminator?: string;
  entries?: Record<string, string | number>;
  values?: unknown[];
  checks?: Array<{ _zod: { def: CheckDef } }>;
}
interface CheckDef {
  check: string;
  format?: string;
  pattern?: RegExp;
  value?: number | bigint;
  inclusive?: boolean;
  minimum?: number;
  maximum?: number;
  length?: number;
  error?: (issue: unknown) => unknown;
}
type Schema = z.ZodType;

export const defOf = (s: Schema): Def => (s as unknown as { def: Def }).def;

export type FieldKind = 'leaf' | 'object' | 'list' | 'map' | 'union';

export interface FieldDoc {
  /** Qualified path in the notation above; '' is the whole config. */
  id: string;
  kind: FieldKind;
  /** The field's schema as declared (with its default/optional wrappers). */
  schema: Schema;
  /** The input-side schema under the wrappers. */
  core: Schema;
  required: boolean;
  hasDefault: boolean;
  defaultValue?: unknown;
  description: string;
  /** Human-readable type with its constraints. */
  type: string;
  /** Cross-field rules (refinements) of this field. */
  rules: string[];
  /** For fields of some forms of a union without a discriminator. */
  onlyIn?: string;
  /** Leaves only: an example value, valid for `schema`. */
  example?: unknown;
  /** Leaves reachable through objects only: the DEID__... environment override. */
  env?: string;
  /** Keys from the config root when the path has no list, map or union step. */
  plainPath?: string[];
}

// ---------------------------------------------------------------------------------- tables

/** Descriptions of fields whose schema has no `.describe()`. */
const DESCRIPTIONS: Record<string, string> = {
  dimse: 'The DICOM listener (C-ECHO and C-STORE SCP) that a PACS or modality sends studies to.',
  'dimse.aeTitle': 'The called AE title the gateway answers to; an association addressed to any other AE title is rejected. Leading and trailing spaces are ignored.',
  'dimse.host': 'Address the DICOM listener binds to. The embedded default stays on loopback; `0.0.0.0` listens on every IPv4 interface.',
  'dimse.port': 'TCP port of the DICOM listener. 0 lets the operating system choose; the chosen port is printed at start.',
  'dimse.maxAssociations': 'Associations served at the same time; one more is rejected (A-ASSOCIATE-RJ, transient, "local limit exceeded") and audited.',
  'dimse.callers': 'The calling AE allow-list. Any calling AE not listed here is rejected (A-ASSOCIATE-RJ) and audited, unless `acceptAnyCaller` is on.',
  'dimse.callers[].aeTitle': 'A calling AE title that may associate. The same AE title may be listed several times; its address lists are united.',
  'dimse.callers[].hosts': 'IPv4/IPv6 addresses or CIDR blocks this AE title may connect from; an association from any other address is rejected. Empty: any address.',
  'dimse.acceptAnyCaller': 'Accept every calling AE title (the called AE title must still match). For loopback-only set-ups; a deployment lists its callers instead.',
  'dimse.sopClasses': 'Storage SOP Class UIDs accepted in presentation contexts. Empty: every storage SOP class. Verification (C-ECHO) is always accepted.',
  'dimse.transferSyntaxes': 'Transfer syntax UIDs accepted; of the ones the caller proposes, the first allowed one is taken. Empty: any transfer syntax.',
  'dimse.maxPduLength': 'Largest P-DATA PDU the gateway receives (bytes), announced in the A-ASSOCIATE-AC; a peer that sends larger PDUs is disconnected.',
  'dimse.tls': 'DICOM TLS on the listener (TLS 1.2 or newer). When enabled, the port speaks only TLS.',
  'dimse.tls.enabled': 'Serve DICOM over TLS. Needs `certFile` and `keyFile`.',
  'dimse.tls.certFile': 'The server certificate (PEM; a chain may follow it).',
  'dimse.tls.keyFile': 'The private key of `certFile` (PEM). Keep it readable by the gateway\'s user only.',
  'dimse.tls.caFile': 'CA certificates (PEM) that sign client certificates; required by `requireClientCert`.',
  'dimse.tls.requireClientCert': 'Mutual TLS: ask every peer for a certificate and refuse the connection unless it verifies against `caFile`.',

  spool: 'The durable queue on disk between the DICOM listener and the destinations. Every accepted instance is here (fsync\'d) before the sender gets Success; it holds PHI.',
  'spool.dir': 'Folder of the spool (`incoming/`, `processing/`, `quarantine/`, `tmp/`, `outgoing/`). Exactly one gateway process per folder. Relative paths are taken from the working directory.',
  'spool.highWaterPercent': 'C-STORE is answered 0xA700 (Refused: Out of Resources) and `/readyz` fails while the spool\'s file system is fuller than this percentage.',
  'spool.minFreeMB': '... or while that file system has less free space than this many MB.',
  'spool.workers': 'De-identification worker threads.',
  'spool.workerNice': "How much lower the scheduling priority of the gateway's background threads is than the process's (Linux niceness per thread; 0 = the same): the de-identification workers, and V8's own background threads (optimizing compiler, garbage-collector helpers). When the CPU is short, receiving and acknowledging instances goes first and the rest uses what is left; the spool holds the backlog. Ignored on other systems.",
  'spool.maxInFlight': 'Instances between the spool and the destinations at a time (backpressure); the rest waits on disk.',
  'spool.fsync': 'fsync every received file and its folder before answering Success. Switch off only for benchmarks: without it an acknowledged instance can be lost in a power failure.',

  routing: '`first-match`: the first matching route wins. `fan-out`: every matching route gets its own de-identified copy. An instance no route matches is dropped and audited.',

  routes: 'The routing rules, in order. Each rule matches on the association and header values, and says how to de-identify and where to send, or to drop.',
  'routes[].name': 'Name of the route, as it appears in the audit log and metrics.',
  'routes[].match': 'Conditions that must all hold for the route to apply. Leave out to match every instance.',
  'routes[].match.callingAE': 'The calling AE title of the association, exactly.',
  'routes[].match.calledAE': 'The called AE title of the association, exactly.',
  'routes[].match.sourceIp': 'The peer\'s address: an IPv4 or IPv6 address (exact), or an IPv4 CIDR block.',
  'routes[].match.modality': 'Modality (0008,0060) is one of these values.',
  'routes[].match.sopClass': 'SOP Class UID (0008,0016) is one of these UIDs.',
  'routes[].match.tags': 'Conditions on top-level header attributes; all must hold. A value longer than 4096 bytes or a sequence counts as absent.',
  'routes[].match.tags[].tag': 'The attribute: a keyword (`StudyDescription`) or a tag (`0008,1030`, `(0008,1030)` or `00081030`).',
  'routes[].match.tags[].equals': 'The value (trailing spaces and NULs removed) equals this text exactly.',
  'routes[].match.tags[].regex': 'The value matches this JavaScript regular expression (anywhere in the value unless anchored with `^`/`$`). An absent attribute never matches.',
  'routes[].match.tags[].present': '`true`: the attribute must be present; `false`: it must be absent.',
  'routes[].drop': 'Drop matching instances instead of forwarding them; each drop is audited with the route\'s name.',
  'routes[].profile': 'The de-identification profile: `pixel-only` (a keep-list: only what places and interprets the pixels) or `basic` (PS3.15 Table E.1-1 with its options).',
  'routes[].options': 'PS3.15 Table E.1-1 options of the `basic` profile. `retainLongFullDates` and `retainLongModifiedDates` are alternatives: choose one.',
  'routes[].overrides': 'Per-route overrides of top-level attributes. They win over the profile; the leak guard still checks the result.',
  'routes[].overrides[].tag': 'The attribute: a keyword (`ImageComments`) or a tag (`0020,4000`).',
  'routes[].overrides[].action': 'Keep the attribute as is, remove it, empty its value, or replace its value with `value`.',
  'routes[].overrides[].value': 'The new value, for `action: replace`.',
  'routes[].acceptRisks': 'Pixel risks accepted instead of quarantining the instance (`PIXEL_RISK`); accept one only when its pixels are known to be clean.',
  'routes[].destinations': 'Names of the destinations (keys of `destinations`) that receive the de-identified instances.',

  destinations: 'Where de-identified instances go, by name; routes refer to these names.',
  'destinations.<name>': 'One destination: a folder, a DICOMweb service (STOW-RS) or a DICOM node (C-STORE), chosen by `type`. Failures are retried per `retry`; permanent failures are quarantined.',
  'destinations.<name>.type': 'The kind of destination.',
  'destinations.<name>[type=folder]': 'Writes each instance to `<path>/<patient pseudonym>/<Study UID>/<Series UID>/<SOP Instance UID>.dcm`.',
  'destinations.<name>[type=folder].path': 'The folder (created when missing).',
  'destinations.<name>[type=stow-rs]': 'Posts instances to a DICOMweb service, one study per request, the exact de-identified bytes.',
  'destinations.<name>[type=stow-rs].url': 'The DICOMweb root (the base of `/studies`); instances are posted to `{url}/studies/{StudyInstanceUID}`.',
  'destinations.<name>[type=stow-rs].auth': 'The Authorization header. The secret is read from its file or environment variable at every request, so a rotated secret is picked up without a restart. Not set: no Authorization header.',
  'destinations.<name>[type=stow-rs].auth.type': '`bearer` (a token) or `basic` (user name and password).',
  'destinations.<name>[type=stow-rs].auth[type=bearer]': '`Authorization: Bearer <token>`.',
  'destinations.<name>[type=stow-rs].auth[type=bearer].tokenFile': 'File holding the token (surrounding white space ignored). Wins over `tokenEnv`.',
  'destinations.<name>[type=stow-rs].auth[type=bearer].tokenEnv': 'Environment variable holding the token, read when `tokenFile` is not set.',
  'destinations.<name>[type=stow-rs].auth[type=basic]': '`Authorization: Basic <user:password>`.',
  'destinations.<name>[type=stow-rs].auth[type=basic].username': 'The user name.',
  'destinations.<name>[type=stow-rs].auth[type=basic].passwordFile': 'File holding the password (surrounding white space ignored). Wins over `passwordEnv`.',
  'destinations.<name>[type=stow-rs].auth[type=basic].passwordEnv': 'Environment variable holding the password, read when `passwordFile` is not set.',
  'destinations.<name>[type=stow-rs].batchSize': 'Instances per STOW-RS request (all of one study).',
  'destinations.<name>[type=stow-rs].maxBatchMB': 'Size bound of one request in MB (a request is held in memory about three times); an instance larger than this goes alone.',
  'destinations.<name>[type=stow-rs].timeoutMs': 'Socket idle timeout of a request in milliseconds (not a bound on the whole upload).',
  'destinations.<name>[type=stow-rs].tls': 'TLS of `https` URLs.',
  'destinations.<name>[type=stow-rs].tls.caFile': 'CA certificates (PEM) trusted for the server\'s certificate, instead of Node\'s built-in list.',
  'destinations.<name>[type=stow-rs].tls.rejectUnauthorized': 'Refuse a server whose certificate does not verify. Switch off only in tests.',
  'destinations.<name>[type=c-store]': 'Sends the exact de-identified bytes, in their own transfer syntax, to a DICOM node by C-STORE.',
  'destinations.<name>[type=c-store].aeTitle': 'The called AE title of the destination node.',
  'destinations.<name>[type=c-store].host': 'Host name or address of the destination node.',
  'destinations.<name>[type=c-store].port': 'Its DICOM port.',
  'destinations.<name>[type=c-store].callingAeTitle': 'The calling AE title the gateway uses (the destination must know it).',
  'destinations.<name>[type=c-store].timeoutMs': 'Connect, association and PDU timeout in milliseconds (at least 1000 is used).',

  retry: 'Retries of transient destination failures (connection refused, timeouts, HTTP 5xx/429, DIMSE 0xA7xx), with exponential backoff and jitter. Delay after failed attempt n: `min(maxDelayMs, initialDelayMs * multiplier^(n-1))`, of which the fraction `jitter` is random.',
  'retry.maxAttempts': 'Attempts per instance and destination, the first included. When they are exhausted the instance is quarantined (`RETRIES_EXHAUSTED`) and can be released later.',
  'retry.initialDelayMs': 'Delay after the first failed attempt, in milliseconds.',
  'retry.maxDelayMs': 'Upper bound of a delay, in milliseconds.',
  'retry.multiplier': 'Factor between consecutive delays.',
  'retry.jitter': 'Fraction of each delay that is randomised: 0 = none, 1 = full jitter (uniform between 0 and the delay).',

  audit: 'The hash-chained audit log: one JSON line per event, never PHI. `deid-gateway audit verify FILE` checks a chain.',
  'audit.stdout': 'Copy every audit line to stdout (for container log collectors).',
  'audit.file': 'The audit log file (JSON lines, each entry chained to the previous one by its hash); its folder is created when missing. Not set: no file, only the stdout copy (when `stdout` is on).',
  'audit.maxFileMB': 'Rotate the audit file at this size (`audit.jsonl` -> `audit.jsonl.1` ...); the chain continues into the next file.',

  api: 'The REST API: `/healthz`, `/readyz` and `/metrics` without a token; `/api/status`, `/api/quarantine` and `/api/audit` behind a bearer token.',
  'api.enabled': 'Serve the REST API.',
  'api.host': 'Address the API binds to.',
  'api.port': 'TCP port of the API. 0 lets the operating system choose; the chosen port is printed at start.',
  'api.tokenFile': 'File with the accepted bearer tokens, one per line. Without any token every `/api/` call is refused (401).',
  'api.tokenEnv': 'Environment variable holding one more accepted bearer token.',

  pseudonyms: 'The keyed pseudonyms (HMAC-SHA256 under one secret): the same secret and settings give the same UIDs, patient pseudonyms and date offsets on every run and every replica.',
  'pseudonyms.secretFile': 'File holding the pseudonymization secret (at least 16 bytes; surrounding white space ignored); created with 256 random bits and mode 0600 when missing. When set, `secretEnv` is not read.',
  'pseudonyms.secretEnv': 'Environment variable holding the secret, read when `secretFile` is not set. When it is unset too, the secret comes from `.deid-secret` in the working directory (created when missing).',
  'pseudonyms.patientIdPrefix': 'Prefix of patient pseudonyms (the prefix + 16 base32 characters).',
  'pseudonyms.dateShiftDays': 'Range, in days, of the per-patient date offset used by the `retainLongModifiedDates` option (never 0).',
  'pseudonyms.dateShiftDays.min': 'Lowest offset in days.',
  'pseudonyms.dateShiftDays.max': 'Highest offset in days.',
  'pseudonyms.lookupCsv': 'CSV file of `original PatientID,subject ID` (header row optional); an entry wins over the keyed pseudonym.',
  'sources': 'Clinical systems export jobs pull from (QIDO-RS/WADO-RS or C-FIND/C-MOVE/C-GET), by name. Empty: no export jobs.',
  'sources.<name>': 'One source; jobs name it in `source`.',
  'sources.<name>.type': '`dicomweb` (QIDO-RS search, WADO-RS retrieve) or `dimse` (C-FIND, then C-MOVE to the gateway\'s own SCP or C-GET).',
  'sources.<name>[type=dicomweb]': 'A DICOMweb service: studies are found with QIDO-RS (paged) and retrieved per series (WADO-RS, original transfer syntax) straight into the spool.',
  'sources.<name>[type=dicomweb].url': 'The DICOMweb root (the base of `/studies`).',
  'sources.<name>[type=dicomweb].auth': 'The Authorization header, as for a STOW-RS destination; the secret is read from its file or environment variable at every request.',
  'sources.<name>[type=dicomweb].auth.type': '`bearer` (a token) or `basic` (user name and password).',
  'sources.<name>[type=dicomweb].auth[type=bearer]': '`Authorization: Bearer <token>`.',
  'sources.<name>[type=dicomweb].auth[type=bearer].tokenFile': 'File holding the token (surrounding white space ignored). Wins over `tokenEnv`.',
  'sources.<name>[type=dicomweb].auth[type=bearer].tokenEnv': 'Environment variable holding the token, read when `tokenFile` is not set.',
  'sources.<name>[type=dicomweb].auth[type=basic]': '`Authorization: Basic <user:password>`.',
  'sources.<name>[type=dicomweb].auth[type=basic].username': 'The user name.',
  'sources.<name>[type=dicomweb].auth[type=basic].passwordFile': 'File holding the password (surrounding white space ignored). Wins over `passwordEnv`.',
  'sources.<name>[type=dicomweb].auth[type=basic].passwordEnv': 'Environment variable holding the password, read when `passwordFile` is not set.',
  'sources.<name>[type=dicomweb].tls': 'TLS of `https` URLs.',
  'sources.<name>[type=dicomweb].tls.caFile': 'CA certificates (PEM) trusted for the server\'s certificate, instead of Node\'s built-in list.',
  'sources.<name>[type=dicomweb].tls.rejectUnauthorized': 'Refuse a server whose certificate does not verify. Switch off only in tests.',
  'sources.<name>[type=dicomweb].pageSize': 'QIDO-RS page size (`limit`/`offset`); pages are fetched until one comes back short.',
  'sources.<name>[type=dicomweb].timeoutMs': 'Socket idle timeout of one request in milliseconds.',
  'sources.<name>[type=dicomweb].maxConcurrent': 'Requests to this source in flight at once, over every job: keeps a clinical PACS from being flooded.',
  'sources.<name>[type=dicomweb].requestsPerSecond': 'Requests started per second to this source, over every job; 0 = no rate limit.',
  'sources.<name>[type=dimse]': 'A DIMSE Query/Retrieve SCP (Study Root): C-FIND at study, series and image level, then C-MOVE or C-GET.',
  'sources.<name>[type=dimse].aeTitle': 'The PACS\'s AE title (the called AE). With `retrieve: c-move` it is also accepted as a caller of the gateway\'s SCP, for the sub-operations.',
  'sources.<name>[type=dimse].host': 'Host name or address of the PACS.',
  'sources.<name>[type=dimse].port': 'DICOM port of the PACS.',
  'sources.<name>[type=dimse].callingAeTitle': 'The gateway\'s AE title towards this PACS. Not set: `dimse.aeTitle`.',
  'sources.<name>[type=dimse].retrieve': '`c-move`: the PACS sends the instances to the gateway\'s own SCP (it must know `moveDestination` with the gateway\'s host and port); `c-get`: on the same association, for a PACS that cannot route C-MOVE back.',
  'sources.<name>[type=dimse].moveDestination': 'The AE title the PACS knows the gateway\'s SCP by. Not set: `dimse.aeTitle`.',
  'sources.<name>[type=dimse].timeoutMs': 'Association and response timeout in milliseconds.',
  'sources.<name>[type=dimse].maxConcurrent': 'Associations to this PACS open at once, over every job.',
  'sources.<name>[type=dimse].requestsPerSecond': 'C-FIND/C-MOVE/C-GET requests started per second, over every job; 0 = no rate limit.',
  'exports': 'Export jobs: where their records live and how hard they work.',
  'exports.dir': 'One folder per job: `job.json` (the request, 0600: the query holds identifiers), `events.jsonl` (progress, replayed at start so a job resumes where it stopped) and `manifest.json`.',
  'exports.maxRunningJobs': 'Jobs running at once; the others wait in state `queued`.',
  'exports.seriesConcurrency': 'Series retrieved at once within one job (the source\'s own limits apply on top).',
  'exports.maxAttempts': 'Attempts of one source request (query or retrieve) that fails transiently (down, timeout, 5xx, 0xA7xx) before the series, study or job is reported failed.',
  'exports.initialDelayMs': 'Wait after the first failed attempt; doubled after each further one.',
  'exports.maxDelayMs': 'Longest wait between two attempts.',
  'pseudonyms.lookupRequired': 'Quarantine (`LOOKUP_MISSING`) every instance whose PatientID has no entry in `lookupCsv`.',
};

/** Examples of leaves whose schema has no `.meta({ examples })`; each must validate against its field. */
const EXAMPLES: Record<string, unknown> = {
  'dimse.aeTitle': 'DEIDGW',
  'dimse.host': '0.0.0.0',
  'dimse.port': 104,
  'dimse.maxAssociations': 32,
  'dimse.callers[].aeTitle': 'PACS_ROUTER',
  'dimse.callers[].hosts': ['10.20.0.0/16', '10.30.4.17'],
  'dimse.acceptAnyCaller': true,
  'dimse.sopClasses': ['1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.4'],
  'dimse.transferSyntaxes': ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2'],
  'dimse.maxPduLength': 131072,
  'dimse.tls.enabled': true,
  'dimse.tls.certFile': '/etc/deid-gateway/tls/server.crt',
  'dimse.tls.keyFile': '/etc/deid-gateway/tls/server.key',
  'dimse.tls.caFile': '/etc/deid-gateway/tls/hospital-ca.crt',
  'dimse.tls.requireClientCert': true,
  'spool.dir': '/var/lib/deid-gateway/spool',
  'spool.highWaterPercent': 85,
  'spool.minFreeMB': 4096,
  'spool.workers': 4,
  'spool.workerNice': 10,
  'spool.maxInFlight': 128,
  'spool.fsync': false,
  routing: 'fan-out',
  'routes[].name': 'research-ct',
  'routes[].match.callingAE': 'PACS_ROUTER',
  'routes[].match.calledAE': 'DEIDGW',
  'routes[].match.sourceIp': '10.20.0.0/16',
  'routes[].match.modality': ['CT', 'MR'],
  'routes[].match.sopClass': ['1.2.840.10008.5.1.4.1.1.7'],
  'routes[].match.tags[].tag': 'StudyDescription',
  'routes[].match.tags[].equals': 'RESEARCH STUDY 42',
  'routes[].match.tags[].regex': '^RESEARCH',
  'routes[].match.tags[].present': false,
  'routes[].drop': true,
  'routes[].profile': 'basic',
  'routes[].options': ['retainLongModifiedDates', 'cleanDescriptors'],
  'routes[].overrides[].tag': '0020,4000',
  'routes[].overrides[].action': 'replace',
  'routes[].overrides[].value': 'de-identified for study 42',
  'routes[].acceptRisks': ['burned-in-annotation'],
  'routes[].destinations': ['research-pacs', 'archive'],
  'destinations.<name>.type': 'stow-rs',
  'destinations.<name>[type=folder].path': '/srv/research/incoming',
  'destinations.<name>[type=stow-rs].url': 'https://research-pacs.example.org/dicom-web',
  'destinations.<name>[type=stow-rs].auth.type': 'bearer',
  'destinations.<name>[type=stow-rs].auth[type=bearer].tokenFile': '/run/secrets/research-pacs-token',
  'destinations.<name>[type=stow-rs].auth[type=bearer].tokenEnv': 'RESEARCH_PACS_TOKEN',
  'destinations.<name>[type=stow-rs].auth[type=basic].username': 'deid-gateway',
  'destinations.<name>[type=stow-rs].auth[type=basic].passwordFile': '/run/secrets/research-pacs-password',
  'destinations.<name>[type=stow-rs].auth[type=basic].passwordEnv': 'RESEARCH_PACS_PASSWORD',
  'destinations.<name>[type=stow-rs].batchSize': 50,
  'destinations.<name>[type=stow-rs].maxBatchMB': 128,
  'destinations.<name>[type=stow-rs].timeoutMs': 120000,
  'destinations.<name>[type=stow-rs].tls.caFile': '/etc/deid-gateway/tls/research-ca.crt',
  'destinations.<name>[type=stow-rs].tls.rejectUnauthorized': false,
  'destinations.<name>[type=c-store].aeTitle': 'RESEARCH_PACS',
  'destinations.<name>[type=c-store].host': 'research-pacs.example.org',
  'destinations.<name>[type=c-store].port': 11112,
  'destinations.<name>[type=c-store].callingAeTitle': 'DEIDGW',
  'destinations.<name>[type=c-store].timeoutMs': 60000,
  'retry.maxAttempts': 20,
  'retry.initialDelayMs': 1000,
  'retry.maxDelayMs': 300000,
  'retry.multiplier': 3,
  'retry.jitter': 1,
  'audit.stdout': false,
  'audit.file': '/var/log/deid-gateway/audit.jsonl',
  'audit.maxFileMB': 500,
  'api.enabled': false,
  'api.host': '0.0.0.0',
  'api.port': 9090,
  'api.tokenFile': '/run/secrets/deid-api-tokens',
  'api.tokenEnv': 'GATEWAY_API_TOKEN',
  'pseudonyms.secretFile': '/run/secrets/deid-secret',
  'pseudonyms.secretEnv': 'GATEWAY_SECRET',
  'pseudonyms.patientIdPrefix': 'STUDY42-',
  'pseudonyms.dateShiftDays.min': -730,
  'pseudonyms.dateShiftDays.max': -30,
  'pseudonyms.lookupCsv': '/etc/deid-gateway/subjects.csv',
  'pseudonyms.lookupRequired': true,
  'sources.<name>[type=dicomweb].url': 'https://pacs.hospital.example.org/dicom-web',
  'sources.<name>[type=dicomweb].auth.type': 'bearer',
  'sources.<name>[type=dicomweb].auth[type=bearer].tokenFile': '/run/secrets/pacs-token',
  'sources.<name>[type=dicomweb].auth[type=bearer].tokenEnv': 'PACS_TOKEN',
  'sources.<name>[type=dicomweb].auth[type=basic].username': 'deid-gateway',
  'sources.<name>[type=dicomweb].auth[type=basic].passwordFile': '/run/secrets/pacs-password',
  'sources.<name>[type=dicomweb].auth[type=basic].passwordEnv': 'PACS_PASSWORD',
  'sources.<name>[type=dicomweb].tls.caFile': '/etc/deid-gateway/tls/hospital-ca.crt',
  'sources.<name>[type=dicomweb].tls.rejectUnauthorized': false,
  'sources.<name>[type=dicomweb].pageSize': 200,
  'sources.<name>[type=dicomweb].timeoutMs': 120000,
  'sources.<name>[type=dicomweb].maxConcurrent': 4,
  'sources.<name>[type=dicomweb].requestsPerSecond': 5,
  'sources.<name>[type=dimse].aeTitle': 'PACS',
  'sources.<name>[type=dimse].host': 'pacs.hospital.example.org',
  'sources.<name>[type=dimse].port': 104,
  'sources.<name>[type=dimse].callingAeTitle': 'DEIDGW',
  'sources.<name>[type=dimse].retrieve': 'c-get',
  'sources.<name>[type=dimse].moveDestination': 'DEIDGW_SCP',
  'sources.<name>[type=dimse].timeoutMs': 120000,
  'sources.<name>[type=dimse].maxConcurrent': 1,
  'sources.<name>[type=dimse].requestsPerSecond': 2,
  'sources.<name>.type': 'dicomweb',
  'exports.dir': '/var/lib/deid-gateway/exports',
  'exports.maxRunningJobs': 4,
  'exports.seriesConcurrency': 4,
  'exports.maxAttempts': 10,
  'exports.initialDelayMs': 2000,
  'exports.maxDelayMs': 60000,
};

/**
 * Rules the schema checks with a refinement that has no fixed message (superRefine), keyed by
 * the field that carries the refinement ('' = the whole config).
 */
const RULES: Record<string, string[]> = {
  '': [
    'Every name in `routes[].destinations` must be a key of `destinations`.',
    'A route needs at least one destination, or `drop: true`.',
  ],
};

// ---------------------------------------------------------------------------------- schema walk

export interface Unwrapped {
  core: Schema;
  optional: boolean;
  hasDefault: boolean;
  defaultValue?: unknown;
  description?: string;
  examples?: unknown[];
}

/** Peels default/optional/pipe wrappers (a pipe is documented by its input side). */
export function unwrap(schema: Schema): Unwrapped {
  const u: Unwrapped = { core: schema, optional: false, hasDefault: false };
  let s = schema;
  for (;;) {
    const meta = z.globalRegistry.get(s) as { description?: string; examples?: unknown } | undefined;
    u.description ??= meta?.description;
    if (u.examples === undefined && meta?.examples !== undefined) u.examples = Array.isArray(meta.examples) ? meta.examples : Object.values(meta.examples as object);
    const d = defOf(s);
    if ((d.type === 'default' || d.type === 'prefault') && d.innerType) {
      if (!u.hasDefault && !u.optional) {
        u.hasDefault = true;
        u.defaultValue = d.defaultValue;
      }
      s = d.innerType;
    } else if ((d.type === 'optional' || d.type === 'nullable' || d.type === 'readonly') && d.innerType) {
      if (d.type !== 'readonly') u.optional = true;
      s = d.innerType;
    } else if (d.type === 'pipe' && d.in) {
      s = d.in;
    } else {
      u.core = s;
      return u;
    }
  }
}

const isObject = (s: Schema): boolean => defOf(s).type === 'object';
/** A union whose every option is an object (after unwrapping). */
const isObjectUnion = (s: Schema): boolean => defOf(s).type === 'union' && (defOf(s).options ?? []).every((o) => isObject(unwrap(o).core));
const isContainer = (s: Schema): boolean => isObject(s) || isObjectUnion(s);

/** The key whose value is a literal in every option (declared or found). */
function discriminatorOf(union: Schema): string | undefined {
  const d = defOf(union);
  if (d.discriminator) return d.discriminator;
  const shapes = (d.options ?? []).map((o) => defOf(unwrap(o).core).shape ?? {});
  return Object.keys(shapes[0] ?? {}).find((k) => shapes.every((sh) => sh[k] && defOf(unwrap(sh[k]).core).type === 'literal'));
}

const literalValue = (s: Schema): unknown => (defOf(unwrap(s).core).values ?? [])[0];

/** Static messages of refinements; a refinement without one needs an entry in RULES. */
function refinements(s: Schema): { messages: string[]; dynamic: number } {
  const out = { messages: [] as string[], dynamic: 0 };
  for (const c of defOf(s).checks ?? []) {
    const cd = c._zod.def;
    if (cd.check !== 'custom') continue;
    const m = typeof cd.error === 'function' ? cd.error({}) : undefined;
    const text = typeof m === 'string' ? m : typeof m === 'object' && m !== null && typeof (m as { message?: unknown }).message === 'string' ? (m as { message: string }).message : undefined;
    if (text) out.messages.push(text);
    else out.dynamic++;
  }
  return out;
}

const code = (v: unknown): string => '`' + yamlFlow(v) + '`';

/** YAML on one line (flow style), as it would be written in the config file. */
export function yamlFlow(v: unknown): string {
  return stringify(v, { collectionStyle: 'flow', lineWidth: 0, flowCollectionPadding: false }).trim();
}

function bounds(checks: CheckDef[], unit: string): string[] {
  let min: string | undefined, max: string | undefined;
  for (const c of checks) {
    if (c.check === 'greater_than') min = c.inclusive ? `${c.value}` : `more than ${c.value}`;
    if (c.check === 'less_than') max = c.inclusive ? `${c.value}` : `less than ${c.value}`;
    if (c.check === 'min_length' && c.minimum !== undefined) min = `${c.minimum}`;
    if (c.check === 'max_length' && c.maximum !== undefined) max = `${c.maximum}`;
    if (c.check === 'length_equals' && c.length !== undefined) return [`exactly ${c.length}${c.length === 1 ? unit.replace(/s$/, '') : unit}`];
  }
  const n = (v: string): string => `${v}${v === '1' ? unit.replace(/s$/, '') : unit}`;
  if (min !== undefined && max !== undefined && !min.includes(' ') && !max.includes(' ')) return [`${min} to ${n(max)}`];
  return [min !== undefined ? (min.includes(' ') ? min : `at least ${n(min)}`) : '', max !== undefined ? (max.includes(' ') ? max : `at most ${n(max)}`) : ''].filter(Boolean);
}

/** The type of a leaf with its constraints, in words. */
function typeText(s: Schema): string {
  const d = defOf(s);
  const checks = (d.checks ?? []).map((c) => c._zod.def);
  switch (d.type) {
    case 'string': {
      const parts: string[] = [];
      let kind = 'string';
      for (const c of checks) {
        if (c.check !== 'string_format') continue;
        if (c.format === 'url') kind = 'URL';
        else if (c.format === 'regex' && c.pattern) {
          const m = typeof c.error === 'function' ? c.error({}) : undefined;
          parts.push(`matching \`${c.pattern.source}\`${typeof m === 'string' ? ` (${m})` : ''}`);
        } else if (c.format) kind = `string (${c.format})`;
      }
      return [kind, ...bounds(checks, ' characters'), ...parts].join(', ');
    }
    case 'number': {
      const int = checks.some((c) => c.check === 'number_format' && /int/.test(c.format ?? ''));
      return [int ? 'integer' : 'number', ...bounds(checks, '')].join(', ');
    }
    case 'boolean':
      return 'boolean';
    case 'enum':
      return 'one of ' + Object.values(d.entries ?? {}).map(code).join(', ');
    case 'literal':
      return (d.values ?? []).map(code).join(' or ');
    case 'array': {
      const item = typeText(unwrap(d.element!).core);
      return [item === 'string' ? 'list of strings' : `list; each item ${item}`, ...bounds(checks, ' items').map((b) => `with ${b}`)].join('; ');
    }
    case 'union':
      return (d.options ?? []).map((o) => typeText(unwrap(o).core)).join(' or ');
    default:
      throw new Error(`generate-config-reference: no rendering for a zod "${d.type}" field; extend typeText()`);
  }
}

function envName(plainPath: string[]): string {
  return 'DEID__' + plainPath.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('__');
}

/**
 * Every field of the schema, in schema order: containers (objects, lists of objects, maps,
 * unions) before their fields. Throws when a description or example is missing or invalid.
 */
export function collectFields(root: Schema = ConfigSchema): FieldDoc[] {
  const out: FieldDoc[] = [];
  const usedTables = new Set<string>();

  const describe = (id: string, u: Unwrapped): string => {
    if (u.description) return u.description;
    if (id in DESCRIPTIONS) {
      usedTables.add(`d:${id}`);
      return DESCRIPTIONS[id];
    }
    return '';
  };

  const add = (id: string, kind: FieldKind, schema: Schema, extra: Partial<FieldDoc> = {}): FieldDoc => {
    const u = unwrap(schema);
    const r = refinements(u.core);
    const rules = [...r.messages];
    if (r.dynamic > 0) {
      if (!RULES[id]) throw new Error(`generate-config-reference: ${id || '(the whole config)'} has a refinement without a fixed message: describe it in RULES`);
      usedTables.add(`r:${id}`);
      rules.push(...RULES[id]);
    }
    const f: FieldDoc = {
      id, kind, schema, core: u.core,
      required: !u.optional && !u.hasDefault,
      hasDefault: u.hasDefault,
      ...(u.hasDefault ? { defaultValue: u.defaultValue } : {}),
      description: describe(id, u),
      type: '',
      rules,
      ...extra,
    };
    if (kind === 'leaf') {
      f.type = typeText(u.core);
      if (u.examples && u.examples.length) f.example = u.examples[0];
      else if (id in EXAMPLES) {
        usedTables.add(`e:${id}`);
        f.example = EXAMPLES[id];
      }
      if (f.plainPath) {
        const name = envName(f.plainPath);
        // The loader finds fields case-insensitively, ignoring underscores (MIN_FREE_MB -> minFreeMB).
        const back = name.slice(6).split('__').map((seg) => seg.replace(/_/g, '').toLowerCase());
        if (back.join('.') === f.plainPath.join('.').toLowerCase()) f.env = name;
      }
    }
    out.push(f);
    return f;
  };

  /** Fields of an object shape under `prefix` (no trailing dot). */
  const visitShape = (prefix: string, obj: Schema, plain: string[] | undefined, skip?: string, onlyIn?: Map<string, string>): void => {
    for (const [key, child] of Object.entries(defOf(obj).shape ?? {})) {
      if (key === skip) continue;
      visit(prefix ? `${prefix}.${key}` : key, child, plain && [...plain, key], onlyIn?.get(key));
    }
  };

  /** The forms of a union of objects: by discriminator, or merged by key. */
  const visitUnion = (owner: FieldDoc, prefix: string, union: Schema, plain: string[] | undefined): void => {
    const options = defOf(union).options ?? [];
    const disc = discriminatorOf(union);
    if (disc) {
      const values = options.map((o) => literalValue(defOf(unwrap(o).core).shape![disc]));
      const discSchema = z.enum(values.map(String) as [string, ...string[]]);
      add(`${prefix}.${disc}`, 'leaf', discSchema);
      owner.type = `one of ${values.length} kinds, chosen by \`${disc}\`: ${values.map(code).join(', ')}`;
      options.forEach((o, i) => {
        const id = `${prefix}[${disc}=${String(values[i])}]`;
        add(id, 'object', o, { type: `object (when \`${disc}: ${String(values[i])}\`)` });
        visitShape(id, unwrap(o).core, undefined, disc);
      });
      return;
    }
    // No discriminator: one merged list of keys; a key must mean the same in every form.
    const shapes = options.map((o) => defOf(unwrap(o).core).shape ?? {});
    const forms = shapes.map((sh) => '`{' + Object.keys(sh).join(', ') + '}`');
    const merged = new Map<string, Schema>();
    const onlyIn = new Map<string, string>();
    for (const sh of shapes) {
      for (const [k, v] of Object.entries(sh)) {
        const prev = merged.get(k);
        if (prev && JSON.stringify(z.toJSONSchema(prev, { io: 'input' })) !== JSON.stringify(z.toJSONSchema(v, { io: 'input' }))) {
          throw new Error(`generate-config-reference: ${prefix}.${k} differs between the forms of a union; give the union a discriminator or extend visitUnion()`);
        }
        merged.set(k, v);
      }
    }
    for (const k of merged.keys()) {
      const inForms = shapes.map((sh, i) => (k in sh ? forms[i] : '')).filter(Boolean);
      if (inForms.length < shapes.length) onlyIn.set(k, inForms.join(', '));
    }
    owner.rules.push(`Each item takes exactly one of these forms: ${forms.join(', ')}.`);
    owner.type = `${owner.type}; each item one of ${shapes.length} forms`;
    visitShape(prefix, z.object(Object.fromEntries(merged)), plain, undefined, onlyIn);
  };

  const visit = (id: string, schema: Schema, plain: string[] | undefined, onlyIn?: string): void => {
    const u = unwrap(schema);
    const d = defOf(u.core);
    const extra: Partial<FieldDoc> = onlyIn ? { onlyIn } : {};
    if (d.type === 'object') {
      add(id, 'object', schema, { ...extra, type: 'object' });
      visitShape(id, u.core, plain);
    } else if (d.type === 'array' && isContainer(unwrap(d.element!).core)) {
      const item = unwrap(d.element!).core;
      const f = add(id, 'list', schema, { ...extra, type: ['list of objects', ...bounds((d.checks ?? []).map((c) => c._zod.def), ' items').map((b) => `with ${b}`)].join('; ') });
      f.rules.push(...refinements(item).messages);
      if (isObject(item)) visitShape(`${id}[]`, item, undefined);
      else visitUnion(f, `${id}[]`, item, undefined);
    } else if (d.type === 'record') {
      add(id, 'map', schema, { ...extra, type: 'map from a name of your choosing to a destination' });
      const value = unwrap(d.valueType!).core;
      if (isContainer(value)) visit(`${id}.<name>`, d.valueType!, undefined);
      else add(`${id}.<name>`, 'leaf', d.valueType!);
    } else if (isObjectUnion(u.core)) {
      const f = add(id, 'union', schema, { ...extra, type: 'object' });
      visitUnion(f, id, u.core, plain);
    } else {
      add(id, 'leaf', schema, { ...extra, plainPath: plain });
    }
  };

  // The whole config: its rules, then its fields.
  const top = add('', 'object', root, { type: 'object' });
  top.description = 'The whole configuration file.';
  visitShape('', unwrap(root).core, []);

  // Completeness: every field described, every leaf with a valid example, no stale table entry.
  const problems: string[] = [];
  for (const f of out) {
    if (!f.description) problems.push(`${f.id}: no description (add .describe() in the schema or an entry in DESCRIPTIONS)`);
    if (f.kind !== 'leaf') continue;
    if (!('example' in f)) problems.push(`${f.id}: no example (add .meta({ examples }) in the schema or an entry in EXAMPLES)`);
    else {
      const r = f.schema.safeParse(f.example);
      if (!r.success) problems.push(`${f.id}: the example ${yamlFlow(f.example)} is not valid: ${r.error.issues.map((i) => i.message).join('; ')}`);
    }
  }
  for (const id of Object.keys(DESCRIPTIONS)) if (!usedTables.has(`d:${id}`) && !out.some((f) => f.id === id)) problems.push(`DESCRIPTIONS has "${id}", which is not a field of the schema`);
  for (const id of Object.keys(EXAMPLES)) if (!out.some((f) => f.id === id && f.kind === 'leaf')) problems.push(`EXAMPLES has "${id}", which is not a leaf field of the schema`);
  for (const id of Object.keys(RULES)) if (!usedTables.has(`r:${id}`)) problems.push(`RULES has "${id}", which has no refinement without a fixed message`);
  if (problems.length) throw new Error(`generate-config-reference:\n  ${problems.join('\n  ')}`);
  return out;
}

// ---------------------------------------------------------------------------------- rendering

/** A value as one shell word (single-quoted when it holds anything but safe characters). */
const shellWord = (v: string): string => (/^[\w.\/:@%+,=-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

/** The Default line: the value, "all fields at their defaults", "not set" or "none (required)". */
function defaultText(f: FieldDoc): string {
  if (f.hasDefault) {
    const v = f.defaultValue;
    if (Array.isArray(v) && v.length === 0) return '`[]` (an empty list)';
    if (f.kind !== 'leaf' && typeof v === 'object' && v !== null) {
      const fresh = f.core.safeParse({});
      if (fresh.success && JSON.stringify(fresh.data) === JSON.stringify(v)) return 'every field at its default';
    }
    return code(v);
  }
  return f.required ? 'none: required' : 'not set';
}

const INTRO = `# Configuration reference

<!-- GENERATED by scripts/generate-config-reference.ts from the zod schema in
     src/config/schema.ts. Do not edit: run \`npm run generate:config-reference\`.
     test/config/reference.test.ts fails when this file is stale. -->

\`deid-gateway serve --config FILE\` reads one YAML file (without \`--config\`: the embedded
default, \`config/default.yaml\`), applies environment overrides, and validates everything once
at start. A bad config stops the gateway with a message naming the field, e.g.
\`dimse.port: Too big: expected number to be <=65535\`; unknown keys are errors too, at every
level. Secrets are never values in the file: only paths of secret files or names of
environment variables.

**Environment overrides.** \`DEID__SECTION__FIELD=value\` sets a field reachable through
objects only (not inside \`routes\` or \`destinations\`): the path's keys in upper case with
\`_\` before each capital letter, joined by \`__\`; the value is read as YAML
(\`DEID__DIMSE__PORT=11113\`, \`DEID__SPOOL__MIN_FREE_MB=2048\`,
\`DEID__DIMSE__SOP_CLASSES='[1.2.840.10008.5.1.4.1.1.2]'\`). Each
such field below shows its variable.{{TOGETHER}}

**Paths.** \`a.b\` is key \`b\` of the object \`a\`; \`a[]\` is an item of the list \`a\`;
\`a.<name>\` is a key of your choosing in the map \`a\`; \`a[type=x].b\` is the field \`b\` of
\`a\` when \`a\` has \`type: x\`.

**Example configurations** (each is validated by the tests):

| file | what it shows |
|---|---|
| [\`config/examples/pacs-routing.yaml\`](../config/examples/pacs-routing.yaml) | a hospital PACS routes studies to the gateway; rules by calling AE, modality and header values send CT/MR research studies to a research PACS by C-STORE, drop secondary captures and everything else |
| [\`config/examples/dicomweb-research-export.yaml\`](../config/examples/dicomweb-research-export.yaml) | a research export over DICOMweb: the \`basic\` profile with options, STOW-RS with a bearer token and a private CA, a subject lookup table |
| [\`config/examples/compliance.yaml\`](../config/examples/compliance.yaml) | a compliance-minded set-up: mutual TLS, an AE allow-list with addresses and SOP classes, API tokens from a file, a rotated audit file (plus its stdout copy), the secret from a mounted file |
| [\`config/default.yaml\`](../config/default.yaml) | the embedded default: loopback, any caller, a research folder |
| [\`config/example-deployment.yaml\`](../config/example-deployment.yaml) | TLS, allow-list, routes, STOW-RS and C-STORE destinations |
`;

export function renderConfigReference(root: Schema = ConfigSchema): string {
  const fields = collectFields(root);
  const together = fields.filter((f) => f.env && f.required).map((f) => `\`${f.id}\``);
  const lines: string[] = [INTRO.replace('{{TOGETHER}}', together.length
    ? `\nA variable for a key of an object that the file leaves out brings only that key: keys without\na default of their own (${together.join(', ')})\nmust then be set together, by variables or in the file.`
    : '')];
  const whole = fields.find((f) => f.id === '')!;
  const sections = fields.filter((f) => f.id !== '' && !/[.[]/.test(f.id));
  lines.push('**Rules across fields:**', '', ...whole.rules.map((r) => `- ${r}`), '');
  lines.push('**Sections:** ' + sections.map((f) => `[\`${f.id}\`](#${f.id.toLowerCase()})`).join(', '), '');
  for (const f of fields) {
    if (f.id === '') continue;
    const top = !/[.[]/.test(f.id);
    lines.push(`${top ? '##' : '###'} \`${f.id}\``, '', f.description, '');
    lines.push(`- **Type:** ${f.type}`);
    // A form of a union is not a field of its own: it has no default.
    if (!f.id.endsWith(']')) lines.push(`- **Default:** ${defaultText(f)}`);
    if (f.kind === 'leaf') lines.push(`- **Example:** ${code(f.example)}`);
    if (f.env) lines.push(`- **Environment:** \`${f.env}=${shellWord(yamlFlow(f.example))}\``);
    if (f.onlyIn) lines.push(`- **Only in the form:** ${f.onlyIn}`);
    for (const r of f.rules) lines.push(`- **Rule:** ${r}`);
    lines.push('');
  }
  return lines.join('\n').replace(/\n+$/, '\n');
}

export function findRepoRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
}

if (require.main === module) {
  const root = findRepoRoot();
  const file = path.join(root, REFERENCE_FILE);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, renderConfigReference());
  console.log(`wrote ${REFERENCE_FILE}`);
}
