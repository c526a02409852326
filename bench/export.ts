/**
 * `npm run bench:export`: research export jobs end to end, as ratios measured in the same run on
 * the same data (never against hard-coded numbers):
 *
 *   0. a source Orthanc (the "clinical PACS", DICOMweb plugin) loaded once with N studies of
 *      2 series x 25 CT instances, 512x512x16 bit (~0.53 MB each; bench/export-data.ts, the
 *      bench/corpus.ts header and pixels), by REST POST /instances, 4 uploads at a time;
 *   1. ceiling: a plain WADO-RS download of the same studies, one GET per series
 *      (`Accept: multipart/related; type="application/dicom"; transfer-syntax=*`), 2 requests at
 *      a time (the gateway's default source maxConcurrent), on Node's http with a keep-alive
 *      agent, each body streamed unparsed to a file (no fsync); parts counted afterwards;
 *   2. the export: a fresh `deid-gateway serve` (spool defaults: fsync on, default workers; source
 *      type dicomweb, maxConcurrent 2, requestsPerSecond 0; exports defaults) and a fresh research
 *      Orthanc as its STOW-RS destination; POST /api/exports {studyUids: all} and GET it every
 *      150 ms until terminal: job creation -> `completed` (every instance forwarded);
 *   3. (info, diagnosis) the same export into a folder destination (no network forward), and
 *      with the spool's fsync off (STOW-RS), to see where the time goes; and,
 *      when the target fails (or BENCH_EXPORT_PROFILE=1), one extra STOW-RS export under
 *      `node --cpu-prof` (main thread and workers), summarised like bench:gateway does;
 *   4. peak RSS: the gateway process's VmHWM (worker threads included) read just before it is
 *      stopped; and a large-study phase: one study of 5 Enhanced CT instances of 850 frames
 *      (~446 MB each, 2.2 GB in all; streamed to disk, uploaded streamed, deleted after upload),
 *      exported through a fresh gateway to a folder destination; instance count and Pixel Data
 *      (SHA-256, streamed) checked; a plain WADO-RS download of that series for reference.
 *
 * Targets: (2) >= 60% of (1) in instances/s; gateway peak RSS < 400 MB (large study; the
 * STOW-RS rounds are held to the same bound).
 * Rounds are interleaved (ceiling, export STOW-RS, folder, fsync off; then again) and medians taken;
 * os.loadavg(), /proc/pressure/cpu and the cores busy during each run are in the JSON. CPU seconds
 * of the gateway and of both Orthancs (/proc/<pid>/stat) are taken around each run.
 * Prints a table, writes bench/results/export-latest.json; exit code 0 even when a target fails.
 *
 * Environment: BENCH_EXPORT_STUDIES (default 10), BENCH_EXPORT_RUNS (rounds, default 3),
 * BENCH_EXPORT_LARGE=0 (skip the large study), BENCH_EXPORT_LARGE_INSTANCES (5),
 * BENCH_EXPORT_LARGE_FRAMES (850), BENCH_EXPORT_DIAG=0 (skip the diagnosis variants),
 * BENCH_EXPORT_PROFILE=1|0 (always / never profile; default: when the target fails),
 * BENCH_DIR (work dir, default $TMPDIR/deid-bench), BENCH_EXPORT_RESULTS (default
 * bench/results/export-latest.json).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GatewayProcess, startGatewayProcess, testConfig } from '../test/support/gateway-process';
import { hasOrthanc, Orthanc, startOrthanc } from '../test/support/orthanc';
import { findPixelValue, hashRange } from './corpus';
import { formatHotspots, ProfileSummary, summarizeProfile } from './cpu-profile';
import {
  allInstances, BenchSeries, BenchStudy, exportInstance, INSTANCES_PER_SERIES, largeStudyUid, SERIES_PER_STUDY, studyLayout, uploadFile, writeLargeStudyInstance,
} from './export-data';
import { startProfiledGateway, timeByModule } from './gateway-profile';
import { coresBusy, cpuPressure, cpuSeconds, machineCpu, memoryKiB, metricSum, parseMetrics } from './gateway-proc';
import { freeBytes, listFiles, now, round, rmrf, run } from './util';
import { max, med, r2, Row, table } from './report';

const REPO = path.resolve(__dirname, '../..');
const STUDIES = Math.max(1, Number(process.env.BENCH_EXPORT_STUDIES ?? 10));
const N = STUDIES * SERIES_PER_STUDY * INSTANCES_PER_SERIES;
const RUNS = Math.max(1, Number(process.env.BENCH_EXPORT_RUNS ?? 3));
const LARGE = process.env.BENCH_EXPORT_LARGE !== '0';
const LARGE_INSTANCES = Math.max(1, Number(process.env.BENCH_EXPORT_LARGE_INSTANCES ?? 5));
const LARGE_FRAMES = Math.max(1, Number(process.env.BENCH_EXPORT_LARGE_FRAMES ?? 850));
const DIAG = process.env.BENCH_EXPORT_DIAG !== '0';
const PROFILE = process.env.BENCH_EXPORT_PROFILE; // '1' always, '0' never, unset: when the target fails
const WORK = path.resolve(process.env.BENCH_DIR ?? path.join(os.tmpdir(), 'deid-bench'));
const RESULTS = path.resolve(process.env.BENCH_EXPORT_RESULTS ?? path.join(REPO, 'bench/results/export-latest.json'));
const NPROC = os.availableParallelism();
const POLL_MS = 150;
/** Requests at once: the ceiling's, and the gateway source's maxConcurrent. */
const CONCURRENCY = 2;
const UPLOAD_CONCURRENCY = 4;
/** Give up on one export after this long (the run is then reported as failing). */
const EXPORT_TIMEOUT_S = Math.max(300, N * 1.0);
const LARGE_TIMEOUT_S = 3600;
/** Free space the large phase needs (source copy, spool, output, one input file at a time, margin). */
const LARGE_MIN_FREE = 15e9;

const TARGET_EXPORT_VS_CEILING = 0.6;
const TARGET_RSS_MB = 400;
const TOKEN = 'test-token-123456'; // what test/support/gateway-process.ts gives the gateway
const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const TERMINAL = ['completed', 'completed_with_errors', 'failed', 'cancelled'];

const log = (s: string): void => void process.stderr.write(`[bench:export] ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- peers and clean-up

/** Everything started, stopped in reverse order at the end (also on error or SIGINT). */
const cleanups: Array<{ what: string; fn: () => Promise<void> }> = [];
async function cleanupAll(): Promise<void> {
  while (cleanups.length) {
    const c = cleanups.pop()!;
    try {
      await c.fn();
    } catch (err) {
      log(`clean-up of ${c.what} failed: ${(err as Error).message}`);
    }
  }
}
/** Registers a clean-up and returns a function that runs it now (once). */
function onCleanup(what: string, fn: () => Promise<void>): () => Promise<void> {
  const entry = { what, fn };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i < 0) return;
    cleanups.splice(i, 1);
    await fn();
  };
}

async function orthanc(): Promise<{ o: Orthanc; dispose: () => Promise<void> }> {
  const o = await startOrthanc({ startTimeoutMs: 60_000 });
  return { o, dispose: onCleanup(`Orthanc pid ${o.pid}`, () => o.dispose()) };
}

/** SIGTERM, SIGKILL after 20 s. */
async function stopGateway(g: GatewayProcess): Promise<void> {
  const t = setTimeout(() => void g.kill(), 20_000);
  await g.stop();
  clearTimeout(t);
}

/**
 * The gateway of test/integration/export.test.ts (exportConfig), with the shipped spool and
 * exports defaults (fsync on, default workers, seriesConcurrency): only folders are ours.
 */
function exportGatewayConfig(dir: string, source: Orthanc, destination: Record<string, unknown>, fsync = true): Record<string, unknown> {
  const base = testConfig(dir, { research: destination });
  return {
    ...base,
    spool: { dir: path.join(dir, 'spool'), ...(fsync ? {} : { fsync: false }) },
    sources: { pacs: { type: 'dicomweb', url: source.dicomwebUrl, maxConcurrent: CONCURRENCY, requestsPerSecond: 0 } },
    exports: { dir: path.join(dir, 'exports') },
  };
}

async function gateway(dir: string, config: Record<string, unknown>, profileDir?: string): Promise<{ g: GatewayProcess; dispose: () => Promise<void> }> {
  const g = profileDir ? await startProfiledGateway(dir, config, profileDir) : await startGatewayProcess(dir, config);
  return {
    g,
    dispose: onCleanup(`gateway pid ${g.pid}`, async () => {
      await stopGateway(g);
      rmrf(dir);
    }),
  };
}

async function api(g: GatewayProcess, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${g.apiPort}${p}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function gatewayMetrics(g: GatewayProcess): Promise<Map<string, number>> {
  const r = await fetch(`http://127.0.0.1:${g.apiPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  return parseMetrics(await r.text());
}

async function orthancCount(o: Orthanc): Promise<number> {
  const r = await fetch(`${o.httpUrl}/statistics`);
  return ((await r.json()) as { CountInstances: number }).CountInstances;
}

const sync = async (): Promise<void> => void (await run('sync', []));

/** Runs `fn` over `items`, `limit` at a time. */
async function lanes<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

// ---------------------------------------------------------------- loading the source

/** Uploads every instance of the N studies (built one at a time, never kept); returns their bytes. */
async function loadSource(o: Orthanc): Promise<number> {
  const t0 = now();
  let bytes = 0;
  let done = 0;
  const it = allInstances(STUDIES);
  await Promise.all(Array.from({ length: UPLOAD_CONCURRENCY }, async () => {
    for (let r = it.next(); !r.done; r = it.next()) {
      const buf = exportInstance(r.value.study, r.value.series, r.value.slice);
      bytes += buf.length;
      const res = await fetch(`${o.httpUrl}/instances`, { method: 'POST', body: buf, headers: { 'content-type': 'application/dicom' } });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`Orthanc POST /instances: HTTP ${res.status}: ${text.slice(0, 500)}`);
      if (++done % 100 === 0) log(`  uploaded ${done}/${N}`);
    }
  }));
  const count = await orthancCount(o);
  if (count !== N) throw new Error(`the source Orthanc holds ${count} instances, expected ${N}`);
  log(`source loaded: ${N} instances, ${(bytes / 1e6).toFixed(1)} MB in ${(now() - t0).toFixed(1)} s`);
  return bytes;
}

// ---------------------------------------------------------------- ceiling: plain WADO-RS

/** One WADO-RS GET of a series, the body streamed unparsed into `file`. */
function wadoSeriesToFile(agent: http.Agent, o: Orthanc, s: BenchSeries, file: string): Promise<{ contentType: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${o.dicomwebUrl}/studies/${s.studyUid}/series/${s.seriesUid}`, { agent, headers: { Accept: ACCEPT } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`WADO-RS series: HTTP ${res.statusCode}`));
        return;
      }
      pipeline(res, fs.createWriteStream(file)).then(() => resolve({ contentType: String(res.headers['content-type'] ?? '') }), reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error('WADO-RS series: no data for 120 s')));
    req.on('error', reject);
  });
}

/** Parts of a multipart file, counted by its boundary delimiters, read in 8 MiB chunks. */
function countParts(file: string, contentType: string): number {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) throw new Error(`WADO-RS answer is not multipart: ${contentType}`);
  const delim = Buffer.from(`--${m[1]}`, 'latin1');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe((8 << 20) + delim.length);
    let keep = 0;
    let pos = 0;
    let found = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, keep, buf.length - keep, pos);
      if (n === 0) break;
      pos += n;
      const len = keep + n;
      const view = buf.subarray(0, len);
      let last = -1;
      for (let i = view.indexOf(delim); i >= 0; i = view.indexOf(delim, i + delim.length)) {
        found++;
        last = i;
      }
      // Carry the tail that could hold the start of a delimiter (never one already counted).
      const carryFrom = Math.max(len - (delim.length - 1), last >= 0 ? last + delim.length : 0);
      buf.copy(buf, 0, carryFrom, len);
      keep = len - carryFrom;
    }
    return Math.max(0, found - 1); // the last one closes the body
  } finally {
    fs.closeSync(fd);
  }
}

interface CeilingSample {
  seconds: number;
  /** Multipart bodies written (instances + part headers). */
  bodyBytes: number;
  instances: number;
  sourceCpuSeconds: number | null;
  /** This (bench) process: the client's CPU. */
  clientCpuSeconds: number;
  coresBusy: number;
  load1: number;
}

async function measureCeiling(o: Orthanc, series: BenchSeries[], expected: number, tag: string): Promise<CeilingSample> {
  const dir = path.join(WORK, `wado-${tag}-${process.pid}`);
  rmrf(dir);
  fs.mkdirSync(dir, { recursive: true });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    await sync();
    const load1 = os.loadavg()[0];
    const files: Array<{ file: string; contentType: string }> = [];
    const s0 = cpuSeconds(o.pid);
    const u0 = process.cpuUsage();
    const c0 = machineCpu();
    const t0 = now();
    let k = 0;
    await lanes(series, CONCURRENCY, async (s) => {
      const file = path.join(dir, `series-${k++}.multipart`);
      const { contentType } = await wadoSeriesToFile(agent, o, s, file);
      files.push({ file, contentType });
    });
    const seconds = now() - t0;
    const c1 = machineCpu();
    const u1 = process.cpuUsage(u0);
    const s1 = cpuSeconds(o.pid);
    const instances = files.reduce((n, f) => n + countParts(f.file, f.contentType), 0);
    if (instances !== expected) throw new Error(`WADO-RS brought ${instances} instances, expected ${expected}`);
    return {
      seconds,
      bodyBytes: files.reduce((n, f) => n + fs.statSync(f.file).size, 0),
      instances,
      sourceCpuSeconds: s0 !== null && s1 !== null ? s1 - s0 : null,
      clientCpuSeconds: (u1.user + u1.system) / 1e6,
      coresBusy: coresBusy(c0, c1, NPROC),
      load1,
    };
  } finally {
    agent.destroy();
    rmrf(dir);
  }
}

// ---------------------------------------------------------------- the export

interface TimelinePoint { t: number; state: string; retrieved: number; done: number; failed: number; rssMB: number | null }

interface ExportSample {
  /** Job POST -> terminal state (`completed`: every instance forwarded). */
  seconds: number;
  /** Job POST -> every instance in the spool (instances.retrieved = expected). */
  retrievedSeconds: number | null;
  state: string;
  instances: { found: number; retrieved: number; done: number; failed: number };
  errors: unknown;
  jobBytes: number;
  gatewayPeakKiB: number | null;
  gatewayStartKiB: number | null;
  gatewayCpuSeconds: number | null;
  sourceCpuSeconds: number | null;
  destCpuSeconds: number | null;
  destPeakKiB: number | null;
  coresBusy: number;
  load1: number;
  deidSecondsAvg: number | null;
  forwardSecondsAvg: number | null;
  forwardObservations: number;
  retries: number;
  quarantined: number;
  /** About one point a second. */
  timeline: TimelinePoint[];
  /** deid_* and process_* series at the end, as the gateway reported them. */
  metrics: Record<string, number>;
}

type Dest = 'stow' | 'folder';
interface Variant { id: string; label: string; dest: Dest; fsync: boolean }
const VARIANTS: Record<string, Variant> = {
  stow: { id: 'stow', label: 'export job, STOW-RS -> research Orthanc', dest: 'stow', fsync: true },
  folder: { id: 'folder', label: 'export job, folder destination', dest: 'folder', fsync: true },
  stowNoFsync: { id: 'stowNoFsync', label: 'export job, spool fsync off, STOW-RS', dest: 'stow', fsync: false },
};

/**
 * One job on a started gateway: POST /api/exports for `studyUids`, GET every POLL_MS until a
 * terminal state. CPU of the gateway and both Orthancs around it; VmHWM read at the end (the
 * gateway is idle then, not yet stopped).
 */
async function runJob(g: GatewayProcess, source: Orthanc, dest: Orthanc | null, studyUids: string[], expected: number, timeoutS: number): Promise<ExportSample> {
  const gatewayStartKiB = memoryKiB(g.pid)?.rss ?? null;
  await sync();
  const load1 = os.loadavg()[0];
  const gCpu0 = cpuSeconds(g.pid);
  const sCpu0 = cpuSeconds(source.pid);
  const dCpu0 = dest ? cpuSeconds(dest.pid) : null;
  const c0 = machineCpu();
  const t0 = now();
  const created = await api(g, 'POST', '/api/exports', { source: 'pacs', query: { studyUids }, route: 'research' });
  if (created.status !== 201) throw new Error(`POST /api/exports: HTTP ${created.status}: ${JSON.stringify(created.json)}`);
  const id = String(created.json.id);
  const timeline: TimelinePoint[] = [];
  let retrievedSeconds: number | null = null;
  let lastPoint = -Infinity;
  let job: any;
  for (;;) {
    const r = await api(g, 'GET', `/api/exports/${id}`);
    const t = now() - t0;
    if (r.status !== 200) throw new Error(`GET /api/exports/${id}: HTTP ${r.status}`);
    job = r.json;
    if (retrievedSeconds === null && job.instances.retrieved >= expected) retrievedSeconds = t;
    const terminal = TERMINAL.includes(job.state);
    if (terminal || t - lastPoint >= 1) {
      lastPoint = t;
      const mem = memoryKiB(g.pid);
      timeline.push({ t: round(t, 2), state: job.state, retrieved: job.instances.retrieved, done: job.instances.done, failed: job.instances.failed, rssMB: mem ? round((mem.rss * 1024) / 1e6, 1) : null });
    }
    if (terminal) break;
    if (t > timeoutS) throw new Error(`after ${timeoutS} s the job is ${job.state}: ${JSON.stringify(job.instances)}`);
    await sleep(POLL_MS);
  }
  const seconds = now() - t0;
  const c1 = machineCpu();
  const gCpu1 = cpuSeconds(g.pid);
  const sCpu1 = cpuSeconds(source.pid);
  const dCpu1 = dest ? cpuSeconds(dest.pid) : null;
  const gMem = memoryKiB(g.pid);
  const dMem = dest ? memoryKiB(dest.pid) : null;
  const m = await gatewayMetrics(g);
  const deidCount = metricSum(m, 'deid_deidentify_seconds_count');
  const fwdCount = metricSum(m, 'deid_forward_seconds_count');
  const keep: Record<string, number> = {};
  for (const [k, val] of m) if ((k.startsWith('deid_') && !k.includes('_bucket{')) || k.startsWith('process_') || k.startsWith('nodejs_heap_size')) keep[k] = val;
  return {
    seconds,
    retrievedSeconds,
    state: String(job.state),
    instances: { found: job.instances.found, retrieved: job.instances.retrieved, done: job.instances.done, failed: job.instances.failed },
    errors: job.errors ?? null,
    jobBytes: job.bytes,
    gatewayPeakKiB: gMem?.hwm ?? null,
    gatewayStartKiB,
    gatewayCpuSeconds: gCpu0 !== null && gCpu1 !== null ? gCpu1 - gCpu0 : null,
    sourceCpuSeconds: sCpu0 !== null && sCpu1 !== null ? sCpu1 - sCpu0 : null,
    destCpuSeconds: dCpu0 !== null && dCpu1 !== null ? dCpu1 - dCpu0 : null,
    destPeakKiB: dMem?.hwm ?? null,
    coresBusy: coresBusy(c0, c1, NPROC),
    load1,
    deidSecondsAvg: deidCount ? metricSum(m, 'deid_deidentify_seconds_sum') / deidCount : null,
    forwardSecondsAvg: fwdCount ? metricSum(m, 'deid_forward_seconds_sum') / fwdCount : null,
    forwardObservations: fwdCount,
    retries: metricSum(m, 'deid_forward_retries_total'),
    quarantined: metricSum(m, 'deid_instances_quarantined_total'),
    timeline,
    metrics: keep,
  };
}

const completedAll = (s: ExportSample, expected: number): boolean =>
  s.state === 'completed' && s.instances.done === expected && s.instances.failed === 0;

/**
 * One export of the N studies: a fresh research Orthanc (STOW-RS) or a folder, a fresh gateway;
 * throws unless the job completed and exactly N new (re-identified UID) instances arrived.
 */
async function measureExport(source: Orthanc, studyUids: string[], v: Variant, profileDir?: string): Promise<ExportSample> {
  const peer = v.dest === 'stow' ? await orthanc() : null;
  const dest = peer?.o ?? null;
  const dir = path.join(WORK, `exp-${v.id}-${process.pid}`);
  rmrf(dir);
  const folder = path.join(dir, 'research');
  try {
    const destination = dest ? { type: 'stow-rs', url: dest.dicomwebUrl } : { type: 'folder', path: folder };
    const { g, dispose } = await gateway(dir, exportGatewayConfig(dir, source, destination, v.fsync), profileDir);
    try {
      const s = await runJob(g, source, dest, studyUids, N, EXPORT_TIMEOUT_S);
      if (!completedAll(s, N)) throw new Error(`the job ended ${s.state}: ${JSON.stringify(s.instances)}; errors ${JSON.stringify(s.errors).slice(0, 1500)}`);
      if (dest) {
        const list = await dest.qidoInstances();
        const sops = new Set(list.map((i) => i.sopInstanceUid));
        if (list.length !== N || sops.size !== N) throw new Error(`the research Orthanc lists ${list.length} instances (${sops.size} distinct), expected ${N}`);
        const notRemapped = list.filter((i) => !i.sopInstanceUid.startsWith('2.25.')).length;
        if (notRemapped) throw new Error(`${notRemapped} instance(s) at the research Orthanc kept their original SOP Instance UID`);
      } else {
        const written = listFiles(folder).filter((f) => f.endsWith('.dcm')).length;
        if (written !== N) throw new Error(`the folder destination holds ${written} files, expected ${N}`);
      }
      return s;
    } finally {
      await dispose();
    }
  } finally {
    rmrf(dir);
    await peer?.dispose();
  }
}

/** One STOW-RS export under `node --cpu-prof`: hotspots of the main thread and each worker thread. */
async function profileExport(source: Orthanc, studyUids: string[]): Promise<{ profiles: ThreadProfile[]; sample: ExportSample }> {
  const profDir = path.join(WORK, `exp-prof-${process.pid}`);
  rmrf(profDir);
  fs.mkdirSync(profDir, { recursive: true });
  try {
    const sample = await measureExport(source, studyUids, VARIANTS.stow, profDir);
    const files = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(profDir, f));
    const summaries = files.map((f) => ({ ...summarizeProfile(f, 25, REPO), byModule: timeByModule(f) }));
    // Busiest thread first.
    return { profiles: summaries.sort((a, b) => busyMs(b) - busyMs(a)), sample };
  } finally {
    rmrf(profDir);
  }
}

type ThreadProfile = ProfileSummary & { byModule: Array<{ module: string; ms: number }> };
/** Sampled time minus idle. */
const busyMs = (p: ProfileSummary): number => p.totalMs - (p.bySelf.find((h) => h.fn === '(idle)')?.selfMs ?? 0);

// ---------------------------------------------------------------- the large study

interface LargeResult {
  skipped?: string;
  instances: number;
  frames: number;
  bytes?: number;
  generateSeconds?: number;
  uploadSeconds?: number;
  ceiling?: CeilingSample;
  export?: ExportSample;
  /** .dcm files in the folder destination. */
  outputs?: number;
  /** Outputs whose Pixel Data hashes like an input's. */
  pixelsIdentical?: number;
  error?: string;
}

/** The series of a study as the source lists them (QIDO-RS), with their instance counts. */
async function seriesOf(o: Orthanc, study: string): Promise<BenchSeries[]> {
  const r = await fetch(`${o.dicomwebUrl}/studies/${study}/series?includefield=00201209`, { headers: { Accept: 'application/dicom+json' } });
  if (!r.ok) throw new Error(`QIDO series: HTTP ${r.status}`);
  const list = (await r.json()) as Array<Record<string, { Value?: unknown[] }>>;
  return list.map((j) => ({ studyUid: study, seriesUid: String(j['0020000E']?.Value?.[0]), instances: Number(j['00201209']?.Value?.[0] ?? 0) }));
}

/**
 * One study of LARGE_INSTANCES Enhanced CT instances (one series) in its own source Orthanc
 * (input files written one at a time, deleted once uploaded); a plain WADO-RS download of the
 * series; the export through a fresh gateway into a folder: VmHWM, outputs counted, Pixel Data
 * hashed against the inputs'.
 */
async function largePhase(): Promise<LargeResult> {
  const res: LargeResult = { instances: LARGE_INSTANCES, frames: LARGE_FRAMES };
  fs.mkdirSync(WORK, { recursive: true });
  const free = Math.min(freeBytes(WORK), freeBytes(os.tmpdir()));
  if (free < LARGE_MIN_FREE) {
    res.skipped = `only ${(free / 1e9).toFixed(1)} GB free (${WORK}, ${os.tmpdir()}); the large study needs about ${LARGE_MIN_FREE / 1e9} GB`;
    log(`large study SKIPPED: ${res.skipped}`);
    return res;
  }
  const inputDir = path.join(WORK, `large-in-${process.pid}`);
  const dir = path.join(WORK, `exp-large-${process.pid}`);
  const folder = path.join(dir, 'research');
  let source: { o: Orthanc; dispose: () => Promise<void> } | null = null;
  try {
    source = await orthanc();
    const o = source.o;
    rmrf(inputDir);
    const pixelHashes = new Set<string>();
    let bytes = 0;
    let gen = 0;
    let up = 0;
    for (let k = 0; k < LARGE_INSTANCES; k++) {
      const file = path.join(inputDir, `large-${k}.dcm`);
      let t = now();
      const info = writeLargeStudyInstance(file, LARGE_FRAMES, k);
      gen += now() - t;
      bytes += info.bytes;
      pixelHashes.add(hashRange(file, info.pixelOffset, info.pixelLength));
      t = now();
      await uploadFile(o.httpUrl, file);
      up += now() - t;
      fs.rmSync(file);
      log(`  large instance ${k + 1}/${LARGE_INSTANCES}: ${(info.bytes / 1e6).toFixed(0)} MB written and uploaded`);
    }
    Object.assign(res, { bytes, generateSeconds: round(gen, 1), uploadSeconds: round(up, 1) });
    const count = await orthancCount(o);
    if (count !== LARGE_INSTANCES) throw new Error(`the large-study Orthanc holds ${count} instances, expected ${LARGE_INSTANCES}`);
    const study = largeStudyUid();

    log('large study: plain WADO-RS download of the series ...');
    res.ceiling = await measureCeiling(o, await seriesOf(o, study), LARGE_INSTANCES, 'large');
    log(`large study: WADO-RS ${res.ceiling.seconds.toFixed(1)} s = ${(bytes / 1e6 / res.ceiling.seconds).toFixed(0)} MB/s`);

    log('large study: export job into a folder destination ...');
    rmrf(dir);
    const { g, dispose } = await gateway(dir, exportGatewayConfig(dir, o, { type: 'folder', path: folder }));
    try {
      res.export = await runJob(g, o, null, [study], LARGE_INSTANCES, LARGE_TIMEOUT_S);
      // Checked while the (idle) gateway still runs: its clean-up removes `dir`.
      const outs = fs.existsSync(folder) ? listFiles(folder).filter((f) => f.endsWith('.dcm')) : [];
      res.outputs = outs.length;
      res.pixelsIdentical = outs.filter((f) => {
        const p = findPixelValue(path.join(folder, f));
        return p !== null && pixelHashes.has(hashRange(path.join(folder, f), p.offset, p.length));
      }).length;
    } finally {
      await dispose();
    }
    const e = res.export;
    log(`large study: export ${e.state} in ${e.seconds.toFixed(1)} s = ${(bytes / 1e6 / e.seconds).toFixed(0)} MB/s, gateway peak RSS ${(((e.gatewayPeakKiB ?? NaN) * 1024) / 1e6).toFixed(0)} MB; ${res.outputs}/${LARGE_INSTANCES} instances written, ${res.pixelsIdentical} with identical Pixel Data`);
    return res;
  } catch (err) {
    res.error = (err as Error).message.slice(0, 4000);
    log(`large study FAILED: ${res.error}`);
    return res;
  } finally {
    rmrf(dir);
    rmrf(inputDir);
    await source?.dispose();
  }
}

// ---------------------------------------------------------------- report

const kibToMB = (k: number | null): number | null => (k === null ? null : (k * 1024) / 1e6);

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const started = new Date();
  const loadBefore = os.loadavg();
  const pressureBefore = cpuPressure();
  const cli = path.join(REPO, 'dist/src/cli/main.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: build first (npm run build)`);
  if (!hasOrthanc()) throw new Error('Orthanc or its DICOMweb plugin is missing: scripts/install-test-deps.sh');

  fs.mkdirSync(WORK, { recursive: true });
  // The source's copy, the ceiling's download, the gateway's spool + output, a research Orthanc,
  // plus the gateway's own free-space floor (512 MB).
  const perCopy = N * 560_000;
  const need = 4 * perCopy + 1.5e9;
  const free = Math.min(freeBytes(WORK), freeBytes(os.tmpdir()));
  log(`free disk: ${(freeBytes(WORK) / 1e9).toFixed(1)} GB in ${WORK}, ${(freeBytes(os.tmpdir()) / 1e9).toFixed(1)} GB in ${os.tmpdir()}; need about ${(need / 1e9).toFixed(1)} GB (+${LARGE ? LARGE_MIN_FREE / 1e9 : 0} GB for the large study)`);
  if (free < need) throw new Error(`not enough free disk space (need about ${(need / 1e9).toFixed(1)} GB)`);

  const versions: Record<string, string | null> = {
    node: process.version,
    git: spawnSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).stdout.trim() || null,
    // The build under test includes uncommitted src/ changes, if any: name them.
    gitDirtySrc: spawnSync('git', ['status', '--porcelain', 'src'], { cwd: REPO, encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).join(', ') || 'no',
  };

  // ---- the source PACS, loaded once
  log(`starting the source Orthanc and loading ${STUDIES} studies x ${SERIES_PER_STUDY} series x ${INSTANCES_PER_SERIES} CT instances ...`);
  const { o: source } = await orthanc();
  const sys = (await (await fetch(`${source.httpUrl}/system`)).json()) as { Version?: string };
  const plugin = (await (await fetch(`${source.httpUrl}/plugins/dicom-web`)).json().catch(() => null)) as { Version?: string } | null;
  versions.orthanc = sys.Version ?? null;
  versions.orthancDicomweb = plugin?.Version ?? null;
  const corpusBytes = await loadSource(source);
  const corpusMB = corpusBytes / 1e6;
  const layout: BenchStudy[] = studyLayout(STUDIES);
  const allSeries = layout.flatMap((s) => s.series);
  const studyUids = layout.map((s) => s.studyUid);
  // Warm Orthanc's storage into the page cache once (untimed), like every later read will find it.
  await measureCeiling(source, allSeries, N, 'warm');

  const ceiling: CeilingSample[] = [];
  const variants = [VARIANTS.stow, ...(DIAG ? [VARIANTS.folder, VARIANTS.stowNoFsync] : [])];
  const ex: Record<string, ExportSample[]> = Object.fromEntries(variants.map((v) => [v.id, []]));
  const errors: Array<{ round: number; measure: string; error: string }> = [];
  const attempt = async <T>(roundNo: number, measure: string, fn: () => Promise<T>, into: T[], describe: (s: T) => string): Promise<void> => {
    log(`round ${roundNo}: ${measure} ...`);
    try {
      const s = await fn();
      into.push(s);
      log(`round ${roundNo}: ${measure}: ${describe(s)}`);
    } catch (err) {
      const msg = (err as Error).message;
      errors.push({ round: roundNo, measure, error: msg.slice(0, 4000) });
      log(`round ${roundNo}: ${measure} FAILED: ${msg.slice(0, 2000)}`);
    }
  };
  const rate = (s: number): string => `${s.toFixed(2)} s = ${(N / s).toFixed(1)} inst/s, ${(corpusMB / s).toFixed(1)} MB/s`;

  for (let k = 1; k <= RUNS; k++) {
    await attempt(k, 'plain WADO-RS download (ceiling)', () => measureCeiling(source, allSeries, N, String(k)), ceiling, (s) => rate(s.seconds));
    for (const v of variants) {
      await attempt(k, v.label, () => measureExport(source, studyUids, v), ex[v.id],
        (s) => `${rate(s.seconds)}; all retrieved at ${s.retrievedSeconds?.toFixed(2) ?? '-'} s; peak RSS ${(kibToMB(s.gatewayPeakKiB) ?? NaN).toFixed(0)} MB`);
    }
  }

  // ---- medians and ratios
  const ips = (s: number | null): number | null => (s === null ? null : N / s);
  const mbps = (s: number | null): number | null => (s === null ? null : corpusMB / s);
  const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);
  const r3 = (x: number | null): number | null => (x === null ? null : round(x, 3));
  const pm = (x: number | null, d = 1): number | null => (x === null ? null : round(x, d));
  const ceilS = med(ceiling.map((s) => s.seconds));
  const ceilIps = ips(ceilS);
  const expS = (id: string): number | null => med((ex[id] ?? []).map((s) => s.seconds));
  const retS = (id: string): number | null => med((ex[id] ?? []).map((s) => s.retrievedSeconds));
  const peakMB = (id: string): number | null => kibToMB(max((ex[id] ?? []).map((s) => s.gatewayPeakKiB)));
  // Same-round pairs (export round k / ceiling round k): the view least affected by load drift.
  const paired = (ex.stow ?? []).map((s, i) => (ceiling[i] ? ceiling[i].seconds / s.seconds : null)).filter((x): x is number => x !== null);
  const stowIps = ips(expS('stow'));
  const mainRatio = ratio(stowIps, ceilIps);
  const stowPeakMB = peakMB('stow');

  const perInst = (x: number | null, n = N): number | null => (x === null ? null : (x * 1000) / n);
  const rows: Row[] = [];
  rows.push({ id: 'ceiling.ips', measure: 'plain WADO-RS download, 2 at a time (ceiling)', value: pm(ceilIps), unit: 'inst/s', reference: '-', ratio: null, target: '-', status: 'info' });
  rows.push({ id: 'ceiling.mbps', measure: 'plain WADO-RS download, 2 at a time (ceiling)', value: pm(mbps(ceilS)), unit: 'MB/s', reference: '-', ratio: null, target: '-', status: 'info' });
  rows.push({
    id: 'stow.ips', measure: 'export job -> STOW-RS -> research Orthanc', value: pm(stowIps), unit: 'inst/s', reference: 'ceiling', ratio: r3(mainRatio),
    target: `>= ${TARGET_EXPORT_VS_CEILING * 100}%`, status: mainRatio === null ? 'FAIL' : mainRatio >= TARGET_EXPORT_VS_CEILING ? 'PASS' : 'FAIL', headline: true,
    note: `same-round pairs: ${paired.map((x) => `${(100 * x).toFixed(1)}%`).join(', ') || '-'}`,
  });
  rows.push({ id: 'stow.mbps', measure: 'export job -> STOW-RS -> research Orthanc', value: pm(mbps(expS('stow'))), unit: 'MB/s', reference: 'ceiling', ratio: r3(ratio(mbps(expS('stow')), mbps(ceilS))), target: '-', status: 'info' });
  rows.push({ id: 'stow.retrieved.ips', measure: 'export job, STOW-RS run: all in the spool', value: pm(ips(retS('stow'))), unit: 'inst/s', reference: 'ceiling', ratio: r3(ratio(ips(retS('stow')), ceilIps)), target: '-', status: 'info' });
  rows.push({
    id: 'stow.rss', measure: 'gateway peak RSS (VmHWM, STOW-RS rounds)', value: pm(stowPeakMB, 0), unit: 'MB', reference: `${TARGET_RSS_MB} MB`, ratio: r3(ratio(stowPeakMB, TARGET_RSS_MB)),
    target: `< ${TARGET_RSS_MB} MB`, status: stowPeakMB === null ? 'FAIL' : stowPeakMB < TARGET_RSS_MB ? 'PASS' : 'FAIL', note: 'highest of the rounds; 1 MB = 10^6 bytes',
  });
  // The load-independent view: CPU time per instance of every process doing the work.
  const ceilCpu = med(ceiling.map((s) => perInst((s.sourceCpuSeconds ?? NaN) + s.clientCpuSeconds)));
  const expCpu = (id: string): number | null => med((ex[id] ?? []).map((s) => perInst((s.gatewayCpuSeconds ?? NaN) + (s.sourceCpuSeconds ?? NaN) + (s.destCpuSeconds ?? 0))));
  rows.push({ id: 'ceiling.cpu', measure: 'ceiling: CPU, source Orthanc + client', value: pm(ceilCpu, 2), unit: 'ms/inst', reference: '-', ratio: null, target: '-', status: 'info' });
  rows.push({ id: 'stow.cpu', measure: 'STOW-RS export: CPU, gateway + both Orthancs', value: pm(expCpu('stow'), 2), unit: 'ms/inst', reference: 'ceiling (inverse)', ratio: r3(ratio(ceilCpu, expCpu('stow'))), target: '-', status: 'info' });
  rows.push({ id: 'stow.cpu.gateway', measure: 'STOW-RS export: CPU, gateway alone', value: pm(med((ex.stow ?? []).map((s) => perInst(s.gatewayCpuSeconds))), 2), unit: 'ms/inst', reference: '-', ratio: null, target: '-', status: 'info' });
  if (ex.folder?.length) {
    rows.push({ id: 'folder.ips', measure: 'export job -> folder destination', value: pm(ips(expS('folder'))), unit: 'inst/s', reference: 'ceiling', ratio: r3(ratio(ips(expS('folder')), ceilIps)), target: '-', status: 'info' });
    rows.push({ id: 'folder.mbps', measure: 'export job -> folder destination', value: pm(mbps(expS('folder'))), unit: 'MB/s', reference: 'ceiling', ratio: r3(ratio(mbps(expS('folder')), mbps(ceilS))), target: '-', status: 'info' });
    rows.push({ id: 'folder.retrieved.ips', measure: 'export job, folder run: all in the spool', value: pm(ips(retS('folder'))), unit: 'inst/s', reference: 'ceiling', ratio: r3(ratio(ips(retS('folder')), ceilIps)), target: '-', status: 'info' });
    rows.push({ id: 'folder.rss', measure: 'gateway peak RSS (folder rounds)', value: pm(peakMB('folder'), 0), unit: 'MB', reference: `${TARGET_RSS_MB} MB`, ratio: r3(ratio(peakMB('folder'), TARGET_RSS_MB)), target: '-', status: 'info' });
  }
  if (ex.stowNoFsync?.length) {
    rows.push({ id: 'stowNoFsync.ips', measure: 'export job, spool fsync off, STOW-RS', value: pm(ips(expS('stowNoFsync'))), unit: 'inst/s', reference: 'ceiling', ratio: r3(ratio(ips(expS('stowNoFsync')), ceilIps)), target: '-', status: 'info' });
  }

  // ---- where the time goes (medians over rounds)
  const diag = (samples: ExportSample[] | undefined) => samples?.length ? {
    seconds: r2(med(samples.map((s) => s.seconds))),
    retrievedSeconds: r2(med(samples.map((s) => s.retrievedSeconds))),
    drainAfterRetrievedSeconds: r2(med(samples.map((s) => (s.retrievedSeconds === null ? null : s.seconds - s.retrievedSeconds)))),
    deidentifyMsAvg: r2(med(samples.map((s) => (s.deidSecondsAvg === null ? null : s.deidSecondsAvg * 1000)))),
    forwardMsAvg: r2(med(samples.map((s) => (s.forwardSecondsAvg === null ? null : s.forwardSecondsAvg * 1000)))),
    gatewayCpuMsPerInstance: r2(med(samples.map((s) => perInst(s.gatewayCpuSeconds)))),
    sourceOrthancCpuMsPerInstance: r2(med(samples.map((s) => perInst(s.sourceCpuSeconds)))),
    destOrthancCpuMsPerInstance: r2(med(samples.map((s) => perInst(s.destCpuSeconds)))),
    /** Cores busy on the whole machine between job creation and its end. */
    machineCoresBusy: r2(med(samples.map((s) => s.coresBusy))),
    /** Cores kept busy by the gateway and both Orthancs (the rest of machineCoresBusy: anything else running). */
    measuredProcessesCoresBusy: r2(med(samples.map((s) => ((s.gatewayCpuSeconds ?? 0) + (s.sourceCpuSeconds ?? 0) + (s.destCpuSeconds ?? 0)) / s.seconds))),
    gatewayStartRssMB: r2(med(samples.map((s) => kibToMB(s.gatewayStartKiB)))),
    gatewayPeakMB: r2(max(samples.map((s) => kibToMB(s.gatewayPeakKiB)))),
    destOrthancPeakMB: r2(med(samples.map((s) => kibToMB(s.destPeakKiB)))),
    retries: max(samples.map((s) => s.retries)),
    quarantined: max(samples.map((s) => s.quarantined)),
  } : null;
  const diagnosis: Record<string, unknown> = {
    ceiling: ceiling.length ? {
      seconds: r2(ceilS),
      sourceOrthancCpuMsPerInstance: r2(med(ceiling.map((s) => perInst(s.sourceCpuSeconds)))),
      clientCpuMsPerInstance: r2(med(ceiling.map((s) => perInst(s.clientCpuSeconds)))),
      machineCoresBusy: r2(med(ceiling.map((s) => s.coresBusy))),
      measuredProcessesCoresBusy: r2(med(ceiling.map((s) => ((s.sourceCpuSeconds ?? 0) + s.clientCpuSeconds) / s.seconds))),
      multipartOverheadBytes: ceiling[0].bodyBytes - corpusBytes,
    } : null,
  };
  for (const v of variants) diagnosis[v.id] = diag(ex[v.id]);

  // ---- CPU profile of one extra STOW-RS export, when the target fails (or asked for)
  let profiles: ThreadProfile[] = [];
  let profiled: ExportSample | null = null;
  const wantProfile = PROFILE === '1' || (PROFILE !== '0' && !(mainRatio !== null && mainRatio >= TARGET_EXPORT_VS_CEILING));
  if (wantProfile) {
    log('profiling one extra STOW-RS export (node --cpu-prof on the gateway: main thread and workers) ...');
    try {
      ({ profiles, sample: profiled } = await profileExport(source, studyUids));
    } catch (err) {
      errors.push({ round: 0, measure: 'cpu profile', error: (err as Error).message.slice(0, 4000) });
      log(`profiling FAILED: ${(err as Error).message}`);
    }
  }

  // ---- the large study (its own source Orthanc; the main one is no longer needed)
  let large: LargeResult | null = null;
  if (LARGE) {
    log(`large study: ${LARGE_INSTANCES} Enhanced CT instances of ${LARGE_FRAMES} frames 512x512x16 bit (${((LARGE_INSTANCES * LARGE_FRAMES * 512 * 512 * 2) / 1e9).toFixed(2)} GB of Pixel Data) ...`);
    large = await largePhase();
    const le = large.export ?? null;
    const lBytes = large.bytes ?? null;
    const lPeak = kibToMB(le?.gatewayPeakKiB ?? null);
    if (large.skipped) {
      rows.push({ id: 'large.rss', measure: 'large study: gateway peak RSS', value: null, unit: 'MB', reference: '-', ratio: null, target: `< ${TARGET_RSS_MB} MB`, status: 'info', headline: true, note: `skipped: ${large.skipped}` });
    } else {
      const lCeil = large.ceiling && lBytes ? lBytes / 1e6 / large.ceiling.seconds : null;
      const lExp = le && lBytes ? lBytes / 1e6 / le.seconds : null;
      rows.push({ id: 'large.ceiling.mbps', measure: `large study (${LARGE_INSTANCES} x ${LARGE_FRAMES} frames): plain WADO-RS`, value: pm(lCeil), unit: 'MB/s', reference: '-', ratio: null, target: '-', status: 'info' });
      rows.push({ id: 'large.export.mbps', measure: 'large study: export job -> folder', value: pm(lExp), unit: 'MB/s', reference: 'its WADO-RS', ratio: r3(ratio(lExp, lCeil)), target: '-', status: 'info', note: le ? `job ${le.state}, ${le.seconds.toFixed(1)} s` : undefined });
      rows.push({
        id: 'large.rss', measure: 'large study: gateway peak RSS (VmHWM)', value: pm(lPeak, 0), unit: 'MB', reference: `${TARGET_RSS_MB} MB`, ratio: r3(ratio(lPeak, TARGET_RSS_MB)),
        target: `< ${TARGET_RSS_MB} MB`, status: lPeak !== null && lPeak < TARGET_RSS_MB ? 'PASS' : 'FAIL', headline: true, note: large.error ? `error: ${large.error.split('\n')[0]}` : undefined,
      });
      const countOk = le !== null && completedAll(le, LARGE_INSTANCES) && large.outputs === LARGE_INSTANCES;
      rows.push({
        id: 'large.instances', measure: 'large study: instances written (job done / files)', value: large.outputs ?? null, unit: 'inst', reference: `${LARGE_INSTANCES} at the source`, ratio: null,
        target: `= ${LARGE_INSTANCES}`, status: countOk ? 'PASS' : 'FAIL', headline: true, note: le ? `job ${le.state}: ${JSON.stringify(le.instances)}` : undefined,
      });
      rows.push({
        id: 'large.pixels', measure: 'large study: outputs with identical Pixel Data', value: large.pixelsIdentical ?? null, unit: 'inst', reference: `${LARGE_INSTANCES}`, ratio: null,
        target: `= ${LARGE_INSTANCES}`, status: large.pixelsIdentical === LARGE_INSTANCES ? 'PASS' : 'FAIL',
      });
    }
    if (le) {
      diagnosis.large = {
        seconds: r2(le.seconds),
        retrievedSeconds: r2(le.retrievedSeconds),
        gatewayCpuSeconds: r2(le.gatewayCpuSeconds),
        sourceOrthancCpuSeconds: r2(le.sourceCpuSeconds),
        machineCoresBusy: r2(le.coresBusy),
        gatewayStartRssMB: r2(kibToMB(le.gatewayStartKiB)),
        gatewayPeakMB: r2(lPeak),
        rssTimelineMaxMB: max(le.timeline.map((p) => p.rssMB)),
      };
    }
  }

  const loadAfter = os.loadavg();
  const out = {
    benchmark: 'export',
    started: started.toISOString(),
    finished: new Date().toISOString(),
    studies: STUDIES,
    instances: N,
    rounds: RUNS,
    corpus: { instances: N, bytes: corpusBytes, mb: round(corpusMB, 1), kind: `${STUDIES} studies x ${SERIES_PER_STUDY} series x ${INSTANCES_PER_SERIES} CT 512x512x16 bit, explicit VR LE, ~130 attributes (bench/export-data.ts)` },
    method: {
      source: 'one Orthanc with the DICOMweb plugin (test/support/orthanc.ts), loaded once by REST POST /instances',
      ceiling: `Node http GET per series, ${CONCURRENCY} at a time on a keep-alive agent, Accept: ${ACCEPT}; body streamed unparsed to a file (no fsync); parts counted afterwards`,
      gateway: `a fresh \`deid-gateway serve\` per run (test/support/gateway-process.ts testConfig; spool and exports defaults: fsync on, default workers, seriesConcurrency; source dicomweb maxConcurrent ${CONCURRENCY}, requestsPerSecond 0; pixel-only route)`,
      export: `POST /api/exports {source, query: {studyUids: all ${STUDIES}}, route} -> GET /api/exports/:id (every ${POLL_MS} ms) shows a terminal state; counted only when "completed" with every instance done, and the destination holds exactly N new instances`,
      destination: 'STOW-RS to a fresh research Orthanc per run; (info) a folder destination',
      peakRss: 'VmHWM of the gateway process (/proc/<pid>/status, worker threads included) after the job ends, before SIGTERM; highest round',
      large: `${LARGE_INSTANCES} Enhanced CT instances x ${LARGE_FRAMES} frames (bench/corpus.ts writeLargeInstance, own SOP UIDs) in one study and series, own source Orthanc; export to a folder; Pixel Data SHA-256 of outputs vs inputs`,
      order: `interleaved rounds: ceiling, ${variants.map((v) => v.id).join(', ')}; medians`,
    },
    machine: {
      cores: NPROC,
      memMB: Math.round(os.totalmem() / 1e6),
      loadavgBefore: loadBefore.map((x) => round(x, 2)),
      loadavgAfter: loadAfter.map((x) => round(x, 2)),
      cpuPressureBefore: pressureBefore,
      cpuPressureAfter: cpuPressure(),
      /** This bench process's own peak RSS (it streams the large files, never holds them). */
      benchProcessPeakMB: round((process.resourceUsage().maxRSS * 1024) / 1e6, 1),
    },
    versions,
    targets: { exportVsCeiling: TARGET_EXPORT_VS_CEILING, peakRssMB: TARGET_RSS_MB },
    rows,
    diagnosis,
    samples: { ceiling, ...ex },
    large,
    profiles: profiles.map((p) => ({ ...p, file: path.basename(p.file), busyMs: busyMs(p) })),
    profiledRun: profiled,
    errors,
  };
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, `${JSON.stringify(out, null, 2)}\n`);

  console.log(`\ndeid-gateway export jobs: ${STUDIES} studies, ${N} CT instances (${corpusMB.toFixed(1)} MB), ${RUNS} round(s), medians; ${NPROC} cores; load ${loadBefore.map((x) => x.toFixed(2)).join(' ')} -> ${loadAfter.map((x) => x.toFixed(2)).join(' ')}\n`);
  console.log(table(rows));
  for (const r of rows) if (r.note) console.log(`  ${r.id}: ${r.note}`);
  const c = diagnosis.ceiling as { seconds: number; sourceOrthancCpuMsPerInstance: number; clientCpuMsPerInstance: number; machineCoresBusy: number; measuredProcessesCoresBusy: number } | null;
  if (c) console.log(`\nceiling: ${c.seconds} s; source Orthanc CPU ${c.sourceOrthancCpuMsPerInstance} ms/inst, client ${c.clientCpuMsPerInstance} ms/inst; machine ${c.machineCoresBusy} of ${NPROC} cores busy (${c.measuredProcessesCoresBusy} by these two)`);
  for (const v of variants) {
    const d = diagnosis[v.id] as ReturnType<typeof diag>;
    if (!d) continue;
    console.log(`\n${v.label}: ${d.seconds} s; all in the spool at ${d.retrievedSeconds} s, then ${d.drainAfterRetrievedSeconds} s to finish`);
    console.log(`  CPU: gateway ${d.gatewayCpuMsPerInstance} ms/inst, source Orthanc ${d.sourceOrthancCpuMsPerInstance} ms/inst${d.destOrthancCpuMsPerInstance === null ? '' : `, research Orthanc ${d.destOrthancCpuMsPerInstance} ms/inst`}; machine ${d.machineCoresBusy} of ${NPROC} cores busy (${d.measuredProcessesCoresBusy} by these three)`);
    console.log(`  de-identify ${d.deidentifyMsAvg} ms/inst avg (worker), forward ${d.forwardMsAvg} ms avg; gateway RSS ${d.gatewayStartRssMB} MB after start, peak ${d.gatewayPeakMB} MB; retries ${d.retries}, quarantined ${d.quarantined}`);
  }
  if (diagnosis.large) console.log(`\nlarge study: ${JSON.stringify(diagnosis.large)}`);
  if (profiled) console.log(`\nprofiled STOW-RS export (not in the table): ${profiled.seconds.toFixed(2)} s, all in the spool at ${profiled.retrievedSeconds?.toFixed(2) ?? '-'} s`);
  for (const p of profiles) {
    if (busyMs(p) < 200) continue; // an idle thread
    console.log(`\n${formatHotspots({ ...p, file: `${path.basename(p.file)}, ${busyMs(p)} ms busy`, bySelf: p.bySelf.slice(0, 12), byTotal: p.byTotal.slice(0, 12) })}`);
    const busy = p.byModule.filter((m) => m.module !== '(idle)');
    const all = busy.reduce((a, m) => a + m.ms, 0);
    console.log(`  busy time by innermost package/folder on the stack (native calls count for their caller):\n${busy.slice(0, 14).map((m) => `    ${String(m.ms).padStart(6)} ms ${(100 * m.ms / Math.max(1, all)).toFixed(1).padStart(5)}%  ${m.module}`).join('\n')}`);
  }
  if (errors.length) {
    console.log(`\n${errors.length} run(s) FAILED (left out of the medians):`);
    for (const e of errors) console.log(`  round ${e.round} ${e.measure}: ${e.error.split('\n')[0]}`);
  }
  const failed = rows.filter((r) => r.status === 'FAIL');
  console.log(`\n${failed.length ? `TARGETS MISSED: ${failed.map((r) => r.id).join(', ')}` : 'all targets met'}; JSON: ${path.relative(REPO, RESULTS)}`);
  return 0;
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping every peer ...`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

main()
  .then(async (code) => {
    await cleanupAll();
    process.exitCode = code;
  })
  .catch(async (err: Error) => {
    log(`error: ${err.stack ?? err.message}`);
    await cleanupAll();
    process.exitCode = 1;
  });
