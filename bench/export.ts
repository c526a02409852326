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
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GatewayProcess } from '../test/support/gateway-process';
import { Orthanc } from '../test/support/orthanc';
import { findPixelValue, hashRange } from './corpus';
import {
  allInstances, BenchSeries, BenchStudy, exportInstance, INSTANCES_PER_SERIES, largeStudyUid, SERIES_PER_STUDY, studyLayout, uploadFile, writeLargeStudyInstance,
} from './export-data';
import { printProfiles, profiledRun, profilesJson, ThreadProfile, threadProfiles, wantProfile } from './gateway-profile';
import {
  coresBusy, cpuDelta, cpuSeconds, ForwardStats, forwardMsDiag, forwardStats, gatewayRssDiag, keptMetrics, troubleDiag, machineCpu, memoryKiB,
} from './gateway-proc';
import { gitDirtySrc, gitHead, loadBefore as takeLoadBefore, loadLine, machineInfo, runTimes } from './machine';
import {
  benchGatewayConfig, checkDelivered, checkPrerequisites, gatewayMetrics, orthanc, orthancCount, runBench, sync, withDestination, withGateway,
} from './peers';
import { benchSettings, freeBytes, listFiles, now, round, rmrf } from './util';
import {
  atLeastRow, attempts, infoRow, kibToMB, max, med, medianBy, msPerInstance, peakMBBy, peakRssRow, pm, printTable, printVerdict, r2, r3, ratio, Row, sameRoundNote, samplesByVariant, throughput, writeJson,
} from './report';

const REPO = path.resolve(__dirname, '../..');
const STUDIES = Math.max(1, Number(process.env.BENCH_EXPORT_STUDIES ?? 10));
const N = STUDIES * SERIES_PER_STUDY * INSTANCES_PER_SERIES;
const LARGE = process.env.BENCH_EXPORT_LARGE !== '0';
const LARGE_INSTANCES = Math.max(1, Number(process.env.BENCH_EXPORT_LARGE_INSTANCES ?? 5));
const LARGE_FRAMES = Math.max(1, Number(process.env.BENCH_EXPORT_LARGE_FRAMES ?? 850));
const { runs: RUNS, diag: DIAG, profile: PROFILE, work: WORK, results: RESULTS } = benchSettings(REPO, 'export');
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

// ---------------------------------------------------------------- peers

/**
 * The gateway of test/integration/export.test.ts (exportConfig), with the shipped spool and
 * exports defaults (fsync on, default workers, seriesConcurrency): only folders are ours.
 */
function exportGatewayConfig(dir: string, source: Orthanc, destination: Record<string, unknown>, fsync = true): Record<string, unknown> {
  return {
    ...benchGatewayConfig(dir, destination, fsync),
    sources: { pacs: { type: 'dicomweb', url: source.dicomwebUrl, maxConcurrent: CONCURRENCY, requestsPerSecond: 0 } },
    exports: { dir: path.join(dir, 'exports') },
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
      sourceCpuSeconds: cpuDelta(s0, s1),
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

interface ExportSample extends ForwardStats {
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
  return {
    seconds,
    retrievedSeconds,
    state: String(job.state),
    instances: { found: job.instances.found, retrieved: job.instances.retrieved, done: job.instances.done, failed: job.instances.failed },
    errors: job.errors ?? null,
    jobBytes: job.bytes,
    gatewayPeakKiB: gMem?.hwm ?? null,
    gatewayStartKiB,
    gatewayCpuSeconds: cpuDelta(gCpu0, gCpu1),
    sourceCpuSeconds: cpuDelta(sCpu0, sCpu1),
    destCpuSeconds: cpuDelta(dCpu0, dCpu1),
    destPeakKiB: dMem?.hwm ?? null,
    coresBusy: coresBusy(c0, c1, NPROC),
    load1,
    ...forwardStats(m),
    timeline,
    metrics: keptMetrics(m),
  };
}

const completedAll = (s: ExportSample, expected: number): boolean =>
  s.state === 'completed' && s.instances.done === expected && s.instances.failed === 0;

/**
 * One export of the N studies: a fresh research Orthanc (STOW-RS) or a folder, a fresh gateway;
 * throws unless the job completed and exactly N new (re-identified UID) instances arrived.
 */
async function measureExport(source: Orthanc, studyUids: string[], v: Variant, profileDir?: string): Promise<ExportSample> {
  const dir = path.join(WORK, `exp-${v.id}-${process.pid}`);
  return withDestination(dir, v.dest === 'stow', async (dest, folder) => {
    const destination = dest ? { type: 'stow-rs', url: dest.dicomwebUrl } : { type: 'folder', path: folder };
    return withGateway(dir, exportGatewayConfig(dir, source, destination, v.fsync), profileDir, async (g) => {
      const s = await runJob(g, source, dest, studyUids, N, EXPORT_TIMEOUT_S);
      if (!completedAll(s, N)) throw new Error(`the job ended ${s.state}: ${JSON.stringify(s.instances)}; errors ${JSON.stringify(s.errors).slice(0, 1500)}`);
      await checkDelivered(dest, 'the research Orthanc', folder, N);
      return s;
    });
  });
}

/** One STOW-RS export under `node --cpu-prof`: hotspots of the main thread and each worker thread. */
async function profileExport(source: Orthanc, studyUids: string[]): Promise<{ profiles: ThreadProfile[]; sample: ExportSample }> {
  const profDir = path.join(WORK, `exp-prof-${process.pid}`);
  rmrf(profDir);
  fs.mkdirSync(profDir, { recursive: true });
  try {
    const sample = await measureExport(source, studyUids, VARIANTS.stow, profDir);
    // Busiest thread first.
    return { profiles: threadProfiles(profDir, REPO), sample };
  } finally {
    rmrf(profDir);
  }
}

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
    const e = await withGateway(dir, exportGatewayConfig(dir, o, { type: 'folder', path: folder }), undefined, async (g) => {
      res.export = await runJob(g, o, null, [study], LARGE_INSTANCES, LARGE_TIMEOUT_S);
      // Checked while the (idle) gateway still runs: its clean-up removes `dir`.
      const outs = fs.existsSync(folder) ? listFiles(folder).filter((f) => f.endsWith('.dcm')) : [];
      res.outputs = outs.length;
      res.pixelsIdentical = outs.filter((f) => {
        const p = findPixelValue(path.join(folder, f));
        return p !== null && pixelHashes.has(hashRange(path.join(folder, f), p.offset, p.length));
      }).length;
      return res.export;
    });
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

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const started = new Date();
  const loadBefore = takeLoadBefore();
  checkPrerequisites(REPO);

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
    git: gitHead(REPO),
    // The build under test includes uncommitted src/ changes, if any: name them.
    gitDirtySrc: gitDirtySrc(REPO).join(', ') || 'no',
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
  const ex = samplesByVariant<ExportSample>(variants);
  const { errors, attempt, attemptVariants } = attempts(log);
  const { ips, mbps, rate } = throughput(N, corpusMB);

  for (let k = 1; k <= RUNS; k++) {
    await attempt(k, 'plain WADO-RS download (ceiling)', () => measureCeiling(source, allSeries, N, String(k)), ceiling, (s) => rate(s.seconds));
    await attemptVariants(k, variants, (v) => measureExport(source, studyUids, v), ex,
      (s) => `${rate(s.seconds)}; all retrieved at ${s.retrievedSeconds?.toFixed(2) ?? '-'} s; peak RSS ${(kibToMB(s.gatewayPeakKiB) ?? NaN).toFixed(0)} MB`);
  }

  // ---- medians and ratios
  const ceilS = med(ceiling.map((s) => s.seconds));
  const ceilIps = ips(ceilS);
  const expS = medianBy(ex, (s) => s.seconds);
  const retS = medianBy(ex, (s) => s.retrievedSeconds);
  const peakMB = peakMBBy(ex);
  const stowIps = ips(expS('stow'));
  const mainRatio = ratio(stowIps, ceilIps);

  const perInst = (x: number | null): number | null => msPerInstance(x, N);
  const rows: Row[] = [];
  rows.push(infoRow('ceiling.ips', 'plain WADO-RS download, 2 at a time (ceiling)', pm(ceilIps), 'inst/s'));
  rows.push(infoRow('ceiling.mbps', 'plain WADO-RS download, 2 at a time (ceiling)', pm(mbps(ceilS)), 'MB/s'));
  rows.push(atLeastRow('stow.ips', 'export job -> STOW-RS -> research Orthanc', stowIps, 'inst/s', 'ceiling', mainRatio, TARGET_EXPORT_VS_CEILING,
    sameRoundNote(ceiling.map((s) => s.seconds), (ex.stow ?? []).map((s) => s.seconds))));
  rows.push(infoRow('stow.mbps', 'export job -> STOW-RS -> research Orthanc', pm(mbps(expS('stow'))), 'MB/s', 'ceiling', r3(ratio(mbps(expS('stow')), mbps(ceilS)))));
  rows.push(infoRow('stow.retrieved.ips', 'export job, STOW-RS run: all in the spool', pm(ips(retS('stow'))), 'inst/s', 'ceiling', r3(ratio(ips(retS('stow')), ceilIps))));
  rows.push(peakRssRow('stow.rss', 'gateway peak RSS (VmHWM, STOW-RS rounds)', peakMB('stow'), TARGET_RSS_MB));
  // The load-independent view: CPU time per instance of every process doing the work.
  const ceilCpu = med(ceiling.map((s) => perInst((s.sourceCpuSeconds ?? NaN) + s.clientCpuSeconds)));
  const expCpu = (id: string): number | null => med((ex[id] ?? []).map((s) => perInst((s.gatewayCpuSeconds ?? NaN) + (s.sourceCpuSeconds ?? NaN) + (s.destCpuSeconds ?? 0))));
  rows.push(infoRow('ceiling.cpu', 'ceiling: CPU, source Orthanc + client', pm(ceilCpu, 2), 'ms/inst'));
  rows.push(infoRow('stow.cpu', 'STOW-RS export: CPU, gateway + both Orthancs', pm(expCpu('stow'), 2), 'ms/inst', 'ceiling (inverse)', r3(ratio(ceilCpu, expCpu('stow')))));
  rows.push(infoRow('stow.cpu.gateway', 'STOW-RS export: CPU, gateway alone', pm(med((ex.stow ?? []).map((s) => perInst(s.gatewayCpuSeconds))), 2), 'ms/inst'));
  if (ex.folder?.length) {
    rows.push(infoRow('folder.ips', 'export job -> folder destination', pm(ips(expS('folder'))), 'inst/s', 'ceiling', r3(ratio(ips(expS('folder')), ceilIps))));
    rows.push(infoRow('folder.mbps', 'export job -> folder destination', pm(mbps(expS('folder'))), 'MB/s', 'ceiling', r3(ratio(mbps(expS('folder')), mbps(ceilS)))));
    rows.push(infoRow('folder.retrieved.ips', 'export job, folder run: all in the spool', pm(ips(retS('folder'))), 'inst/s', 'ceiling', r3(ratio(ips(retS('folder')), ceilIps))));
    rows.push(infoRow('folder.rss', 'gateway peak RSS (folder rounds)', pm(peakMB('folder'), 0), 'MB', `${TARGET_RSS_MB} MB`, r3(ratio(peakMB('folder'), TARGET_RSS_MB))));
  }
  if (ex.stowNoFsync?.length) {
    rows.push(infoRow('stowNoFsync.ips', 'export job, spool fsync off, STOW-RS', pm(ips(expS('stowNoFsync'))), 'inst/s', 'ceiling', r3(ratio(ips(expS('stowNoFsync')), ceilIps))));
  }

  // ---- where the time goes (medians over rounds)
  const diag = (samples: ExportSample[] | undefined) => samples?.length ? {
    seconds: r2(med(samples.map((s) => s.seconds))),
    retrievedSeconds: r2(med(samples.map((s) => s.retrievedSeconds))),
    drainAfterRetrievedSeconds: r2(med(samples.map((s) => (s.retrievedSeconds === null ? null : s.seconds - s.retrievedSeconds)))),
    ...forwardMsDiag(samples),
    gatewayCpuMsPerInstance: r2(med(samples.map((s) => perInst(s.gatewayCpuSeconds)))),
    sourceOrthancCpuMsPerInstance: r2(med(samples.map((s) => perInst(s.sourceCpuSeconds)))),
    destOrthancCpuMsPerInstance: r2(med(samples.map((s) => perInst(s.destCpuSeconds)))),
    /** Cores busy on the whole machine between job creation and its end. */
    machineCoresBusy: r2(med(samples.map((s) => s.coresBusy))),
    /** Cores kept busy by the gateway and both Orthancs (the rest of machineCoresBusy: anything else running). */
    measuredProcessesCoresBusy: r2(med(samples.map((s) => ((s.gatewayCpuSeconds ?? 0) + (s.sourceCpuSeconds ?? 0) + (s.destCpuSeconds ?? 0)) / s.seconds))),
    ...gatewayRssDiag(samples),
    destOrthancPeakMB: r2(med(samples.map((s) => kibToMB(s.destPeakKiB)))),
    ...troubleDiag(samples),
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
  const { profiles, sample: profiled } = await profiledRun(wantProfile(PROFILE, mainRatio !== null && mainRatio >= TARGET_EXPORT_VS_CEILING), 'STOW-RS export', () => profileExport(source, studyUids), errors, log);

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
      rows.push(infoRow('large.ceiling.mbps', `large study (${LARGE_INSTANCES} x ${LARGE_FRAMES} frames): plain WADO-RS`, pm(lCeil), 'MB/s'));
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
    ...runTimes('export', started),
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
      ...machineInfo(NPROC, loadBefore, loadAfter),
      /** This bench process's own peak RSS (it streams the large files, never holds them). */
      benchProcessPeakMB: round((process.resourceUsage().maxRSS * 1024) / 1e6, 1),
    },
    versions,
    targets: { exportVsCeiling: TARGET_EXPORT_VS_CEILING, peakRssMB: TARGET_RSS_MB },
    rows,
    diagnosis,
    samples: { ceiling, ...ex },
    large,
    profiles: profilesJson(profiles),
    profiledRun: profiled,
    errors,
  };
  writeJson(RESULTS, out);

  console.log(`\ndeid-gateway export jobs: ${STUDIES} studies, ${N} CT instances (${corpusMB.toFixed(1)} MB), ${RUNS} round(s), medians; ${NPROC} cores; ${loadLine(loadBefore, loadAfter)}\n`);
  printTable(rows);
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
  printProfiles(profiles);
  printVerdict(rows, errors, REPO, RESULTS);
  return 0;
}

runBench(main, log);
