import { Command } from 'commander';
import * as fs from 'node:fs';
import type { JobStatus } from '../export/job-progress';
import { TERMINAL_STATES } from '../export/job-types';
import type { ExportQuery } from '../export/types';
import { createProgress } from '../folder/progress';
import { loadCliConfig } from './cli-config';
import { UsageError } from './settings-from-options';

interface ExportOptions {
  source: string;
  route?: string;
  profile?: string;
  option?: string[];
  destination?: string[];
  patientId?: string[];
  accession?: string[];
  studyUid?: string[];
  listFile?: string;
  studyDate?: string;
  modality?: string[];
  description?: string;
  config?: string;
  api?: string;
  tokenFile?: string;
  detach?: boolean;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** `--list-file F`: one value per line, `accession:`/`patient:`/`study:` prefixes choose the list (default accession). */
function readListFile(file: string, q: ExportQuery): void {
  for (const raw of fs.readFileSync(file, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(accession|patient|study):\s*(.+)$/.exec(line);
    const [kind, value] = m ? [m[1], m[2]] : ['accession', line];
    const key = kind === 'patient' ? 'patientIds' : kind === 'study' ? 'studyUids' : 'accessionNumbers';
    (q[key] ??= []).push(value);
  }
}

export function queryFromOptions(o: ExportOptions): ExportQuery {
  const q: ExportQuery = {};
  if (o.patientId?.length) q.patientIds = [...o.patientId];
  if (o.accession?.length) q.accessionNumbers = [...o.accession];
  if (o.studyUid?.length) q.studyUids = [...o.studyUid];
  if (o.listFile) readListFile(o.listFile, q);
  if (o.studyDate) {
    const m = /^(\d{8})?-(\d{8})?$/.exec(o.studyDate) ?? /^(\d{8})()$/.exec(o.studyDate);
    if (!m) throw new UsageError('--study-date: YYYYMMDD-YYYYMMDD (either end may be left out) or one YYYYMMDD');
    q.studyDate = { ...(m[1] ? { from: m[1] } : {}), ...(m[2] ? { to: m[2] } : m[1] && !o.studyDate.includes('-') ? { to: m[1] } : {}) };
  }
  if (o.modality?.length) q.modalitiesInStudy = o.modality.map((m) => m.toUpperCase());
  if (o.description) q.studyDescription = o.description;
  return q;
}

function requestBody(o: ExportOptions): Record<string, unknown> {
  return {
    source: o.source,
    query: queryFromOptions(o),
    ...(o.route ? { route: o.route } : {}),
    ...(o.profile ? { profile: o.profile } : {}),
    ...(o.option?.length ? { options: o.option } : {}),
    ...(o.destination?.length ? { destinations: o.destination } : {}),
  };
}

function line(s: JobStatus): string {
  const i = s.instances;
  return `${s.id} ${s.state}: ${s.studies.found} studies, ${i.done}/${i.found} instances done, ${i.failed} failed, ${(s.bytes / 1e6).toFixed(1)} MB`;
}

/** Follows a job with a progress bar until it ends; the exit code says how it ended. */
async function follow(get: () => Promise<JobStatus>, intervalMs: number): Promise<JobStatus> {
  const progress = createProgress('export', process.stderr, 5000, 'instances');
  for (;;) {
    const s = await get();
    progress.tick(s.instances.done + s.instances.failed, s.instances.found || null);
    if (TERMINAL_STATES.includes(s.state)) {
      progress.stop();
      return s;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function report(s: JobStatus): void {
  process.stdout.write(`${line(s)}\n`);
  for (const e of s.errors) process.stdout.write(`  study ${e.newStudyUid}: ${e.code} ${e.error}\n`);
  if (s.error) process.stdout.write(`  error: ${s.error}\n`);
  process.exitCode = s.state === 'completed' ? 0 : 1;
}

async function viaApi(o: ExportOptions): Promise<void> {
  const token = o.tokenFile ? fs.readFileSync(o.tokenFile, 'utf8').split('\n')[0].trim() : process.env.DEID_API_TOKEN;
  if (!token) throw new UsageError('an API token is needed: --token-file FILE or $DEID_API_TOKEN');
  const base = o.api!.replace(/\/$/, '');
  const call = async (method: string, p: string, body?: unknown): Promise<JobStatus> => {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json().catch(() => ({}))) as JobStatus & { error?: string };
    if (!res.ok) throw new UsageError(`${method} ${p}: HTTP ${res.status} ${json.error ?? ''}`);
    return json;
  };
  const created = await call('POST', '/api/exports', requestBody(o));
  process.stderr.write(`export job ${created.id} created\n`);
  if (o.detach) return void process.stdout.write(`${created.id}\n`);
  report(await follow(() => call('GET', `/api/exports/${created.id}`), 1000));
}

async function inForeground(o: ExportOptions): Promise<void> {
  const loaded = await loadCliConfig(o.config);
  // The REST API of a foreground run would only compete for the port of a running gateway.
  const config = { ...loaded.config, api: { ...loaded.config.api, enabled: false } };
  const { startGateway } = await import('../gateway/gateway');
  const gw = await startGateway(config, loaded.hash);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`deid-gateway: ${signal}, stopping (the job resumes at the next start)\n`);
    gw.stop(signal).then(() => process.exit(130), () => process.exit(1));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  try {
    const body = requestBody(o);
    const unfinished = gw.exports.findUnfinished(body);
    const id = unfinished ?? gw.exports.create(body, 'cli').id;
    process.stderr.write(`export job ${id} ${unfinished ? 'resumed' : 'created'}\n`);
    report(await follow(async () => gw.exports.get(id)!, 500));
  } finally {
    if (!stopping) await gw.stop('export finished');
  }
}

/** `deid-gateway export`: one export job, in this process or on a running gateway (--api). */
export function exportCommand(): Command {
  return new Command('export')
    .description('find studies on a configured source (QIDO-RS or C-FIND), retrieve, de-identify and forward them, with progress')
    .requiredOption('--source <name>', 'a source from the config (sources:)')
    .option('--route <name>', 'a configured route: its profile, options and destinations')
    .option('--profile <name>', 'pixel-only or basic (with --destination, instead of --route)')
    .option('--option <name>', 'a Table E.1-1 option for --profile basic (repeatable)', collect)
    .option('--destination <name>', 'a configured destination (repeatable, instead of --route)', collect)
    .option('--patient-id <id>', 'Patient ID (repeatable or comma-separated)', collect)
    .option('--accession <number>', 'Accession Number (repeatable or comma-separated)', collect)
    .option('--study-uid <uid>', 'Study Instance UID (repeatable or comma-separated)', collect)
    .option('--list-file <file>', 'one value per line: accession numbers, or "patient:ID" / "study:UID" lines')
    .option('--study-date <range>', 'YYYYMMDD-YYYYMMDD, open ends allowed (20240101-)')
    .option('--modality <code>', 'ModalitiesInStudy, e.g. CT (repeatable)', collect)
    .option('--description <pattern>', 'StudyDescription with * and ? wildcards, e.g. "*CHEST*"')
    .option('--config <file>', 'YAML config for a foreground run (default: the embedded config/default.yaml)')
    .option('--api <url>', 'run the job on a running gateway instead (e.g. http://127.0.0.1:8080)')
    .option('--token-file <file>', 'API token for --api (default: $DEID_API_TOKEN)')
    .option('--detach', 'with --api: print the job id and return at once')
    .action(async (o: ExportOptions) => {
      if (!o.route && !o.destination?.length) throw new UsageError('give --route NAME, or --destination NAME (with --profile)');
      if (o.api) await viaApi(o);
      else await inForeground(o);
    });
}
