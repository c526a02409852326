import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { createApp } from '../api/app';
import { AuditLog } from '../audit/audit-log';
import { AuditEvent } from '../audit/events';
import { Config } from '../config/schema';
import { loadSecret } from '../config/secret';
import { parseLookupCsv } from '../deid/lookup-table';
import { Pseudonymizer } from '../deid/pseudonyms';
import { WorkerPool } from '../folder/worker-pool';
import { createDestination, Destination } from '../forward/destination';
import { createStowRsRouter } from '../ingest/dicomweb';
import { startDimseServer, DimseServer } from '../ingest/dimse';
import { createMetrics } from '../pipeline/metrics';
import { Pipeline } from '../pipeline/pipeline';
import { EntryResult, EntryTask } from '../pipeline/process-entry';
import { Spool } from '../spool/spool';
import { startupThreads } from '../pipeline/startup-threads';
import { lowerThreadsPriority } from '../pipeline/thread-priority';
import { ExportManager } from '../export/export-manager';
import { JobStore } from '../export/job-store';
import { createSource } from '../export/sources';

export const VERSION = '0.1.0';

export interface RunningGateway {
  dimsePort: number;
  apiPort: number | null;
  /** Export jobs (the foreground `export` command creates its job here). */
  exports: ExportManager;
  stop(reason?: string): Promise<void>;
}

/**
 * The composition root: config -> secret, audit, spool, de-identify workers, destinations,
 * pipeline, DIMSE ingest, REST API. Startup order matters: the spool and the pipeline are
 * ready before the DIMSE port opens, so nothing is accepted that cannot be processed.
 */
export async function startGateway(config: Config, configHash: string): Promise<RunningGateway> {
  // A configured secret file must exist; only the embedded default may create .deid-secret.
  const secretSource = loadSecret(config.pseudonyms.secretFile, { DEID_SECRET: process.env[config.pseudonyms.secretEnv] }, { create: config.pseudonyms.secretFile === undefined });
  const pseudo = new Pseudonymizer(secretSource.secret);
  // V8's compiler and GC helpers yield to the receiving thread, as the de-identify workers do.
  lowerThreadsPriority(startupThreads, config.spool.workerNice);
  const audit = AuditLog.open(config.audit);
  const record = (e: AuditEvent): void => void audit.write(e);
  record({ type: 'gateway.start', version: VERSION, configHash });
  record({ type: 'config.loaded', configHash });

  const metrics = createMetrics();
  const spool = await Spool.open(config.spool.dir, config.spool);
  const outDir = path.join(config.spool.dir, 'outgoing');
  fs.rmSync(outDir, { recursive: true, force: true }); // outputs are rebuilt from the spool after a restart
  fs.mkdirSync(outDir, { recursive: true });
  const lookup = config.pseudonyms.lookupCsv ? parseLookupCsv(fs.readFileSync(config.pseudonyms.lookupCsv, 'utf8')) : undefined;
  const pool = new WorkerPool<EntryTask, EntryResult>(path.join(__dirname, '..', 'pipeline', 'deid-worker.js'), config.spool.workers, {
    config,
    secret: new Uint8Array(secretSource.secret),
    outDir,
    lookup: lookup && [...lookup],
  });
  const secrets = { readFile: (f: string) => fs.readFileSync(f, 'utf8').trim(), env: process.env };
  const destinations = new Map<string, Destination>(Object.entries(config.destinations).map(([name, cfg]) => [name, createDestination(name, cfg, secrets)]));
  const batchSizes = new Map(Object.entries(config.destinations).map(([name, cfg]) => [name, cfg.type === 'stow-rs' ? cfg.batchSize : cfg.type === 'c-store' ? 16 : 1]));
  const sources = new Map(Object.entries(config.sources).map(([name, cfg]) => [name, createSource(name, cfg, secrets, { aeTitle: config.dimse.aeTitle })]));
  const exportJobs = new ExportManager({
    config,
    store: new JobStore(config.exports.dir),
    sources,
    spool,
    keyedHash: (v) => pseudo.keyedHash(v),
    newUid: (v) => pseudo.uid(v),
    audit: record,
  });
  exportJobs.load();
  const pipeline = new Pipeline({
    spool, pool, destinations, batchSizes, retry: config.retry, audit: record, metrics, maxInFlight: config.spool.maxInFlight,
    routeFor: (entry) => exportJobs.routeFor(entry),
    onSettled: (entry, outcome) => exportJobs.settled(entry, outcome),
  });
  pipeline.start();

  let dimse: DimseServer | undefined;
  dimse = await startDimseServer(withSourceCallers(config), spool, (e) => {
    if (e.type === 'instance.received' && e.export) exportJobs.arrivedByCMove(e.export.sopInstanceUid, e.spoolId, e.bytes);
    if (e.type === 'instance.quarantined' && e.export) exportJobs.arrivedByCMove(e.export.sopInstanceUid, e.spoolId, 0, e.code);
    if (e.type === 'association.accepted' || e.type === 'association.rejected') {
      metrics.associationsTotal.inc({ result: e.type === 'association.accepted' ? 'accepted' : 'rejected' });
      record(e.type === 'association.accepted' ? { type: e.type, callingAE: e.callingAE, calledAE: e.calledAE, peer: e.peer } : { type: e.type, callingAE: e.callingAE, calledAE: e.calledAE, peer: e.peer, reason: e.reason ?? '' });
    } else if (e.type === 'instance.received') {
      metrics.received.inc({ source: 'dimse' });
      record({ type: 'instance.received', spoolId: e.spoolId, callingAE: e.callingAE, bytes: e.bytes, ...(e.export ? { job: e.export.job } : {}) });
    } else if (e.type === 'instance.quarantined') {
      metrics.quarantined.inc({ stage: e.stage, code: e.code });
      record({ type: 'instance.quarantined', spoolId: e.spoolId, stage: e.stage, code: e.code, reason: e.reason });
    }
    metrics.associations.set(dimse?.activeAssociations() ?? 0);
  }, (sop) => exportJobs.attribute(sop));
  exportJobs.start();
  const server = dimse;

  let api: http.Server | null = null;
  if (config.api.enabled) {
    const tokens = [
      ...(config.api.tokenFile ? fs.readFileSync(config.api.tokenFile, 'utf8').split('\n').map((t) => t.trim()).filter(Boolean) : []),
      ...(process.env[config.api.tokenEnv] ? [process.env[config.api.tokenEnv]!.trim()] : []),
    ];
    const app = createApp({
      tokens,
      metrics: metrics.registry,
      readiness: async () => {
        const checks: Record<string, boolean> = { spool: spool.hasRoom() };
        for (const [name, d] of destinations) checks[name] = await d.probe().catch(() => false);
        return { ready: Object.values(checks).every(Boolean), checks };
      },
      status: async () => ({ version: VERSION, spool: spool.counts(), inFlight: pipeline.busy, associations: server.activeAssociations(), configHash }),
      quarantine: {
        list: () => spool.listQuarantine(),
        release: async (id, by) => {
          await spool.release(id);
          record({ type: 'quarantine.released', spoolId: id, by });
        },
        purge: async (id, by) => {
          await spool.purge(id);
          record({ type: 'quarantine.purged', spoolId: id, by });
        },
      },
      auditForStudy: async (uid) => {
        const byNew = await audit.search({ newStudyUid: uid });
        return byNew.length ? byNew : audit.search({ originalStudyHash: pseudo.keyedHash(uid) });
      },
      onUnauthorized: (method, p, peer) => record({ type: 'api.unauthorized', method, path: p, peer }),
      exports: exportJobs,
      dicomweb: createStowRsRouter({
        sink: spool,
        onEvent: (e) => {
          if (e.type === 'instance.received') {
            metrics.received.inc({ source: 'dicomweb' });
            record({ type: 'instance.received', spoolId: e.spoolId, callingAE: e.callingAE, bytes: e.bytes });
          } else {
            metrics.quarantined.inc({ stage: e.stage, code: e.code });
            record({ type: 'instance.quarantined', spoolId: e.spoolId, stage: e.stage, code: e.code, reason: e.reason });
          }
        },
      }),
    });
    api = app.listen(config.api.port, config.api.host);
    // Multi-gigabyte STOW-RS uploads: the router has its own idle timeout instead.
    api.requestTimeout = 0;
    await new Promise<void>((resolve, reject) => api!.once('listening', resolve).once('error', reject));
  }

  let stopped = false;
  return {
    dimsePort: server.port,
    apiPort: api ? (api.address() as AddressInfo).port : null,
    exports: exportJobs,
    async stop(reason = 'stop requested') {
      if (stopped) return;
      stopped = true;
      await exportJobs.close();
      await server.close();
      if (api) await new Promise<void>((resolve) => api!.close(() => resolve()));
      await pipeline.stop();
      exportJobs.closeLogs();
      await spool.close();
      await pool.close();
      await Promise.all([...destinations.values()].map((d) => d.close()));
      record({ type: 'gateway.stop', reason });
      await audit.close();
    },
  };
}

/** A DIMSE source sends C-MOVE sub-operations as its own AE: it is a known caller of our SCP. */
function withSourceCallers(config: Config): Config['dimse'] {
  const extra = Object.values(config.sources)
    .flatMap((s) => (s.type === 'dimse' && s.retrieve === 'c-move' ? [{ aeTitle: s.aeTitle, hosts: [] as string[] }] : []))
    .filter((c) => !config.dimse.callers.some((k) => k.aeTitle === c.aeTitle));
  return extra.length ? { ...config.dimse, callers: [...config.dimse.callers, ...extra] } : config.dimse;
}
