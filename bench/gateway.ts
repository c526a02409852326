/**
 * `npm run bench:gateway`: the gateway end to end, as ratios measured in the same run on the
 * same corpus (never against hard-coded numbers):
 *
 *   1. storescu -> DCMTK storescp (into a temp folder): the wire ceiling;
 *   2. storescu -> Orthanc's DICOM port directly: wall time until storescu exits;
 *   3. storescu -> gateway -> Orthanc (STOW-RS): from storescu's start until Orthanc's QIDO shows
 *      all N instances (storescu's own exit = the ingest rate); a fresh gateway (spool fsync on,
 *      default workers) and a fresh Orthanc per round; peak RSS = the gateway process's VmHWM
 *      (worker threads included) read just before it is stopped;
 *   4. (info) the same with a C-STORE destination to Orthanc;
 *   5. (info, diagnosis) the STOW-RS run with the spool's fsync off, and the gateway writing to a
 *      folder destination (no network forward), to see where the time goes; and, when the
 *      end-to-end target fails (or BENCH_GATEWAY_PROFILE=1), one extra STOW-RS run under
 *      `node --cpu-prof` (main thread and worker threads), summarised by bench/cpu-profile.ts.
 *
 * Targets: (3) >= 70% of (2) in instances/s; gateway peak RSS < 400 MB.
 * Every peer runs with TCP_NODELAY=1 on loopback. Rounds are interleaved (every measure once, then
 * again) and medians taken, so load from other work on the machine spreads over all measures;
 * os.loadavg() and /proc/pressure/cpu before and after, and the cores busy during each run, are
 * in the JSON.
 * Prints a table, writes bench/results/gateway-latest.json; exit code 0 even when a target fails.
 *
 * Environment: BENCH_GATEWAY_N (instances, default 500), BENCH_GATEWAY_RUNS (rounds, default 3),
 * BENCH_GATEWAY_SKIP_CSTORE=1, BENCH_GATEWAY_DIAG=0 (skip the diagnosis variants),
 * BENCH_GATEWAY_PROFILE=1|0 (always / never profile; default: when the target fails),
 * BENCH_GATEWAY_PROFILE_DIR (keep the .cpuprofile files there), BENCH_DIR (work dir, default
 * $TMPDIR/deid-bench, corpus cache), BENCH_GATEWAY_RESULTS (default bench/results/gateway-latest.json).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startStorescp } from '../test/support/dcmtk-peers';
import { GatewayProcess, startGatewayProcess, testConfig } from '../test/support/gateway-process';
import { hasOrthanc, Orthanc, startOrthanc } from '../test/support/orthanc';
import { CORPUS_VERSION, ensureCorpus } from './corpus';
import { formatHotspots, ProfileSummary, summarizeProfile } from './cpu-profile';
import { CountingProxy, ProxyRequest, startCountingProxy, startProfiledGateway, timeByModule } from './gateway-profile';
import { coresBusy, cpuPressure, cpuSeconds, machineCpu, memoryKiB, metricSum, parseMetrics, versionLine } from './gateway-proc';
import { freeBytes, listFiles, mb, now, round, rmrf, run, RunResult } from './util';
import { max, med, r2, Row, table } from './report';

const REPO = path.resolve(__dirname, '../..');
const N = Math.max(1, Number(process.env.BENCH_GATEWAY_N ?? 500));
const RUNS = Math.max(1, Number(process.env.BENCH_GATEWAY_RUNS ?? 3));
const SKIP_CSTORE = process.env.BENCH_GATEWAY_SKIP_CSTORE === '1';
const DIAG = process.env.BENCH_GATEWAY_DIAG !== '0';
const PROFILE = process.env.BENCH_GATEWAY_PROFILE; // '1' always, '0' never, unset: when the target fails
const WORK = path.resolve(process.env.BENCH_DIR ?? path.join(os.tmpdir(), 'deid-bench'));
const RESULTS = path.resolve(process.env.BENCH_GATEWAY_RESULTS ?? path.join(REPO, 'bench/results/gateway-latest.json'));
const NPROC = os.availableParallelism();
const POLL_MS = 150;
/** Give up on one end-to-end run after this long (the gateway is then reported as failing). */
const E2E_TIMEOUT_S = Math.max(300, N * 1.0);

const TARGET_E2E_VS_DIRECT = 0.7;
const TARGET_RSS_MB = 400;
const CALLING_AE = 'STORESCU';

const log = (s: string): void => void process.stderr.write(`[bench:gateway] ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ENV = { ...process.env, TCP_NODELAY: '1' };

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

async function gateway(dir: string, destination: Record<string, unknown>, fsync: boolean, profileDir?: string): Promise<{ g: GatewayProcess; dispose: () => Promise<void> }> {
  const base = testConfig(dir, { research: destination });
  // The shipped spool defaults (workers, maxInFlight, fsync on): only the folder is ours.
  const config = { ...base, spool: { dir: path.join(dir, 'spool'), ...(fsync ? {} : { fsync: false }) } };
  const g = profileDir ? await startProfiledGateway(dir, config, profileDir) : await startGatewayProcess(dir, config);
  return {
    g,
    dispose: onCleanup(`gateway pid ${g.pid}`, async () => {
      await stopGateway(g);
      rmrf(dir);
    }),
  };
}

/** storescu of the whole corpus folder in one association; wall time from spawn to exit. */
function storescu(corpusDir: string, port: number, calledAE: string): Promise<RunResult> {
  return run('storescu', ['-aet', CALLING_AE, '-aec', calledAE, '+sd', '+r', '127.0.0.1', String(port), corpusDir], { env: ENV });
}

function checkStorescu(r: RunResult, what: string): void {
  if (r.code !== 0) throw new Error(`storescu -> ${what} exited with ${r.code ?? r.signal}:\n${(r.stderr + r.stdout).slice(-3000)}`);
}

/** Does Orthanc's QIDO-RS list at least `n` instances? (one entry at offset n-1: a cheap query) */
async function qidoHasAtLeast(o: Orthanc, n: number): Promise<boolean> {
  const r = await fetch(`${o.dicomwebUrl}/instances?limit=1&offset=${n - 1}`, { headers: { Accept: 'application/dicom+json' }, signal: AbortSignal.timeout(10_000) });
  if (r.status === 204) return false;
  if (!r.ok) throw new Error(`QIDO: HTTP ${r.status}`);
  const list = (await r.json()) as unknown[];
  return list.length > 0;
}

async function orthancCount(o: Orthanc): Promise<number> {
  const r = await fetch(`${o.httpUrl}/statistics`);
  return ((await r.json()) as { CountInstances: number }).CountInstances;
}

async function gatewayMetrics(g: GatewayProcess): Promise<Map<string, number>> {
  const r = await fetch(`http://127.0.0.1:${g.apiPort}/metrics`, { signal: AbortSignal.timeout(5000) });
  return parseMetrics(await r.text());
}

const sync = async (): Promise<void> => void (await run('sync', []));

// ---------------------------------------------------------------- the measures

interface WireSample { seconds: number; received: number; coresBusy: number; load1: number }
interface DirectSample { seconds: number; visibleSeconds: number; orthancCpuSeconds: number | null; orthancPeakKiB: number | null; coresBusy: number; load1: number }
interface TimelinePoint { t: number; received: number; deidentified: number; forwarded: number }
interface GatewaySample {
  /** storescu start -> storescu exit: every instance acknowledged (fsync'd in the spool). */
  ingestSeconds: number;
  /** storescu start -> QIDO shows N instances. */
  e2eSeconds: number;
  gatewayPeakKiB: number | null;
  /** RSS right after start (idle, workers up): the fixed part of the peak. */
  gatewayStartKiB: number | null;
  gatewayCpuSeconds: number | null;
  orthancCpuSeconds: number | null;
  orthancPeakKiB: number | null;
  /** Average cores busy (whole machine) between storescu start and the end. */
  coresBusy: number;
  load1: number;
  atIngestEnd: { received: number; deidentified: number; forwarded: number };
  deidSecondsAvg: number | null;
  forwardSecondsAvg: number | null;
  forwardObservations: number;
  retries: number;
  quarantined: number;
  timeline: TimelinePoint[];
  /** deid_* and process_* series at the end, as the gateway reported them. */
  metrics: Record<string, number>;
  /** Profiled run only: every HTTP request the gateway made to Orthanc (through a counting proxy). */
  httpRequests?: ProxyRequest[];
}

async function measureWire(corpusDir: string, round: number): Promise<WireSample> {
  const dir = path.join(WORK, `storescp-${process.pid}-${round}`);
  rmrf(dir);
  const scp = await startStorescp(dir);
  const dispose = onCleanup(`storescp pid ${scp.pid}`, async () => {
    await scp.stop();
    rmrf(dir);
  });
  try {
    await sync();
    const load1 = os.loadavg()[0];
    const c0 = machineCpu();
    const r = await storescu(corpusDir, scp.port, scp.aet);
    const c1 = machineCpu();
    checkStorescu(r, 'storescp');
    const received = scp.files().length;
    if (received !== N) throw new Error(`storescp received ${received} of ${N} files`);
    return { seconds: r.seconds, received, coresBusy: coresBusy(c0, c1, NPROC), load1 };
  } finally {
    await dispose();
  }
}

async function measureDirect(corpusDir: string): Promise<DirectSample> {
  const { o, dispose } = await orthanc();
  try {
    await sync();
    const load1 = os.loadavg()[0];
    const cpu0 = cpuSeconds(o.pid);
    const c0 = machineCpu();
    const t0 = now();
    const r = await storescu(corpusDir, o.dicomPort, o.aet);
    const c1 = machineCpu();
    checkStorescu(r, 'Orthanc');
    while (!(await qidoHasAtLeast(o, N))) {
      if (now() - t0 > E2E_TIMEOUT_S) throw new Error(`Orthanc shows ${await orthancCount(o)} of ${N} instances`);
      await sleep(POLL_MS);
    }
    const visibleSeconds = now() - t0;
    const cpu1 = cpuSeconds(o.pid);
    const count = await orthancCount(o);
    if (count !== N) throw new Error(`Orthanc holds ${count} instances, expected ${N}`);
    return {
      seconds: r.seconds,
      visibleSeconds,
      orthancCpuSeconds: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null,
      orthancPeakKiB: memoryKiB(o.pid)?.hwm ?? null,
      coresBusy: coresBusy(c0, c1, NPROC),
      load1,
    };
  } finally {
    await dispose();
  }
}

/** One way of running the gateway. */
interface Variant {
  id: string;
  label: string;
  dest: 'stow' | 'cstore' | 'folder';
  fsync: boolean;
}

const VARIANTS: Record<string, Variant> = {
  stow: { id: 'stow', label: 'storescu -> gateway -> STOW-RS -> Orthanc', dest: 'stow', fsync: true },
  cstore: { id: 'cstore', label: 'storescu -> gateway -> C-STORE -> Orthanc', dest: 'cstore', fsync: true },
  stowNoFsync: { id: 'stowNoFsync', label: 'storescu -> gateway (spool fsync off) -> STOW-RS -> Orthanc', dest: 'stow', fsync: false },
  folder: { id: 'folder', label: 'storescu -> gateway -> folder destination', dest: 'folder', fsync: true },
};

/**
 * One gateway run: a fresh Orthanc (unless the destination is a folder) and a fresh gateway;
 * storescu start -> every instance at the destination. With `profileDir`, the gateway runs
 * under `node --cpu-prof` (its numbers are then not comparable and not used in the table).
 */
async function measureGateway(corpusDir: string, v: Variant, profileDir?: string): Promise<GatewaySample> {
  const peer = v.dest === 'folder' ? null : await orthanc();
  const o = peer?.o ?? null;
  const dir = path.join(WORK, `gw-${v.id}-${process.pid}`);
  rmrf(dir);
  const folder = path.join(dir, 'research');
  let proxy: CountingProxy | null = null;
  try {
    if (profileDir && o && v.dest === 'stow') proxy = await startCountingProxy(Number(new URL(o.httpUrl).port));
    const destination = v.dest === 'stow'
      ? { type: 'stow-rs', url: proxy ? `http://127.0.0.1:${proxy.port}/dicom-web` : o!.dicomwebUrl }
      : v.dest === 'cstore'
        ? { type: 'c-store', aeTitle: o!.aet, host: '127.0.0.1', port: o!.dicomPort }
        : { type: 'folder', path: folder };
    const { g, dispose: disposeGateway } = await gateway(dir, destination, v.fsync, profileDir);
    try {
      const gatewayStartKiB = memoryKiB(g.pid)?.rss ?? null;
      await sync();
      const load1 = os.loadavg()[0];
      const gCpu0 = cpuSeconds(g.pid);
      const oCpu0 = o ? cpuSeconds(o.pid) : null;
      const c0 = machineCpu();
      const t0 = now();

      // Progress from the gateway's own counters every 2 s (one small HTTP GET: ~1% of its main thread).
      const timeline: TimelinePoint[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          try {
            const m = await gatewayMetrics(g);
            timeline.push({
              t: round(now() - t0, 2),
              received: metricSum(m, 'deid_instances_received_total'),
              deidentified: metricSum(m, 'deid_instances_deidentified_total'),
              forwarded: metricSum(m, 'deid_instances_forwarded_total'),
            });
          } catch {
            /* a missed sample */
          }
          await sleep(2000);
        }
      })();
      const arrived = async (): Promise<boolean> => (o ? qidoHasAtLeast(o, N) : metricSum(await gatewayMetrics(g), 'deid_instances_forwarded_total') >= N);
      const arrivedCount = async (): Promise<number> => (o ? orthancCount(o) : metricSum(await gatewayMetrics(g), 'deid_instances_forwarded_total'));

      try {
        const r = await storescu(corpusDir, g.dimsePort, 'DEIDGW');
        const ingestSeconds = now() - t0;
        checkStorescu(r, 'gateway');
        const mi = await gatewayMetrics(g);
        const atIngestEnd = {
          received: metricSum(mi, 'deid_instances_received_total'),
          deidentified: metricSum(mi, 'deid_instances_deidentified_total'),
          forwarded: metricSum(mi, 'deid_instances_forwarded_total'),
        };
        let lastCheck = now();
        while (!(await arrived())) {
          if (now() - t0 > E2E_TIMEOUT_S) throw new Error(`after ${E2E_TIMEOUT_S} s the destination has ${await arrivedCount()} of ${N} instances`);
          if (now() - lastCheck > 10) {
            lastCheck = now();
            const q = metricSum(await gatewayMetrics(g), 'deid_instances_quarantined_total');
            if (q > 0) throw new Error(`the gateway quarantined ${q} instance(s)`);
          }
          await sleep(POLL_MS);
        }
        const e2eSeconds = now() - t0;
        const c1 = machineCpu();
        const gCpu1 = cpuSeconds(g.pid);
        const oCpu1 = o ? cpuSeconds(o.pid) : null;
        sampling = false;
        await sampler;
        // Peak RSS just before stopping (the gateway is idle now; VmHWM is its high-water mark).
        const gMem = memoryKiB(g.pid);
        const oMem = o ? memoryKiB(o.pid) : null;
        const m = await gatewayMetrics(g);
        const deidCount = metricSum(m, 'deid_deidentify_seconds_count');
        const fwdCount = metricSum(m, 'deid_forward_seconds_count');

        // What arrived: N distinct de-identified instances (new UIDs), nothing quarantined.
        if (o) {
          const list = await o.qidoInstances();
          const sops = new Set(list.map((i) => i.sopInstanceUid));
          if (list.length !== N || sops.size !== N) throw new Error(`Orthanc lists ${list.length} instances (${sops.size} distinct), expected ${N}`);
          const notRemapped = list.filter((i) => !i.sopInstanceUid.startsWith('2.25.')).length;
          if (notRemapped) throw new Error(`${notRemapped} instance(s) at Orthanc kept their original SOP Instance UID`);
        } else {
          const written = listFiles(folder).filter((f) => f.endsWith('.dcm')).length;
          if (written !== N) throw new Error(`the folder destination holds ${written} files, expected ${N}`);
        }

        const keep: Record<string, number> = {};
        for (const [k, val] of m) if ((k.startsWith('deid_') && !k.includes('_bucket{')) || k.startsWith('process_') || k.startsWith('nodejs_heap_size')) keep[k] = val;
        return {
          ingestSeconds,
          e2eSeconds,
          gatewayPeakKiB: gMem?.hwm ?? null,
          gatewayStartKiB,
          gatewayCpuSeconds: gCpu0 !== null && gCpu1 !== null ? gCpu1 - gCpu0 : null,
          orthancCpuSeconds: oCpu0 !== null && oCpu1 !== null ? oCpu1 - oCpu0 : null,
          orthancPeakKiB: oMem?.hwm ?? null,
          coresBusy: coresBusy(c0, c1, NPROC),
          load1,
          atIngestEnd,
          deidSecondsAvg: deidCount ? metricSum(m, 'deid_deidentify_seconds_sum') / deidCount : null,
          forwardSecondsAvg: fwdCount ? metricSum(m, 'deid_forward_seconds_sum') / fwdCount : null,
          forwardObservations: fwdCount,
          retries: metricSum(m, 'deid_forward_retries_total'),
          quarantined: metricSum(m, 'deid_instances_quarantined_total'),
          timeline,
          metrics: keep,
          ...(proxy ? { httpRequests: [...proxy.requests] } : {}),
        };
      } finally {
        sampling = false;
        await sampler;
      }
    } finally {
      await disposeGateway();
    }
  } finally {
    rmrf(dir);
    await proxy?.close();
    await peer?.dispose();
  }
}

/** One STOW-RS run under `node --cpu-prof`: hotspots of the main thread and each worker thread. */
async function profileGateway(corpusDir: string): Promise<{ profiles: ThreadProfile[]; sample: GatewaySample }> {
  const keep = process.env.BENCH_GATEWAY_PROFILE_DIR;
  const profDir = keep ? path.resolve(keep) : path.join(WORK, `gw-prof-${process.pid}`);
  if (!keep) rmrf(profDir);
  fs.mkdirSync(profDir, { recursive: true });
  const before = new Set(fs.readdirSync(profDir));
  try {
    const sample = await measureGateway(corpusDir, VARIANTS.stow, profDir);
    const files = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f)).map((f) => path.join(profDir, f));
    const summaries = files.map((f) => ({ ...summarizeProfile(f, 25, REPO), byModule: timeByModule(f) }));
    // Busiest thread first (the main thread is the one with the DIMSE, spool and forward work).
    return { profiles: summaries.sort((a, b) => busyMs(b) - busyMs(a)), sample };
  } finally {
    if (!keep) rmrf(profDir);
  }
}

type ThreadProfile = ProfileSummary & { byModule: Array<{ module: string; ms: number }> };

// ---------------------------------------------------------------- report


/** STOW-RS requests seen by the counting proxy; instances per request estimated from bytes. */
function stowRequestStats(reqs: ProxyRequest[], bytesPerInstance: number) {
  const posts = reqs.filter((r) => r.method === 'POST');
  const per = posts.map((r) => r.requestBytes / bytesPerInstance);
  return {
    requests: posts.length,
    instancesPerRequestAvg: posts.length ? round(per.reduce((a, b) => a + b, 0) / posts.length, 1) : null,
    instancesPerRequestMax: posts.length ? round(Math.max(...per), 1) : null,
    msAvg: posts.length ? round(posts.reduce((a, r) => a + r.ms, 0) / posts.length, 1) : null,
    concurrentMax: posts.length ? Math.max(...posts.map((r) => r.concurrent)) : null,
    /** Distinct client TCP connections: close to `requests` means no keep-alive. */
    connections: new Set(posts.map((r) => r.connection)).size,
    statuses: [...new Set(posts.map((r) => r.status))],
  };
}

/** Sampled time minus idle. */
const busyMs = (p: ProfileSummary): number => p.totalMs - (p.bySelf.find((h) => h.fn === '(idle)')?.selfMs ?? 0);

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const started = new Date();
  const loadBefore = os.loadavg();
  const pressureBefore = cpuPressure();
  const cli = path.join(REPO, 'dist/src/cli/main.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: build first (npm run build)`);
  for (const tool of ['storescu', 'storescp']) {
    if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} is missing: apt-get install dcmtk (scripts/install-test-deps.sh)`);
  }
  if (!hasOrthanc()) throw new Error('Orthanc or its DICOMweb plugin is missing: scripts/install-test-deps.sh');

  fs.mkdirSync(WORK, { recursive: true });
  const corpusDir = path.join(WORK, `corpus-v${CORPUS_VERSION}-${N}`);
  // Corpus + at most one copy at a time in storescp's folder, Orthanc's storage, and the
  // gateway's spool + outgoing folder; plus the gateway's own free-space floor (512 MB).
  const perCopy = N * 560_000;
  const need = (fs.existsSync(corpusDir) ? 0 : perCopy) + 3 * perCopy + 1.5e9;
  const free = freeBytes(WORK);
  const freeTmp = freeBytes(os.tmpdir());
  log(`free disk: ${(free / 1e9).toFixed(1)} GB in ${WORK}, ${(freeTmp / 1e9).toFixed(1)} GB in ${os.tmpdir()}; need about ${(need / 1e9).toFixed(1)} GB`);
  if (free < need || freeTmp < 3 * perCopy) throw new Error(`not enough free disk space (need about ${(need / 1e9).toFixed(1)} GB)`);

  const corpus = ensureCorpus(corpusDir, N, log);
  const files = listFiles(corpus.dir);
  if (files.length !== N) throw new Error(`corpus ${corpus.dir} holds ${files.length} files, expected ${N}`);
  const corpusMB = mb(corpus.bytes);
  log(`corpus: ${N} CT instances, ${corpusMB.toFixed(1)} MB in ${corpus.dir}; ${RUNS} round(s), ${NPROC} cores`);
  // Warm the page cache once (untimed): every measure reads the same cached corpus.
  for (const f of files) fs.readFileSync(path.join(corpus.dir, f));

  const versions: Record<string, string | null> = {
    node: process.version,
    storescu: versionLine('storescu', ['--version']),
    storescp: versionLine('storescp', ['--version']),
    git: spawnSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).stdout.trim() || null,
    gitDirtySrc: spawnSync('git', ['status', '--porcelain', 'src'], { cwd: REPO, encoding: 'utf8' }).stdout.trim() ? 'yes' : 'no',
  };

  const wire: WireSample[] = [];
  const direct: DirectSample[] = [];
  const variants = [VARIANTS.stow, ...(SKIP_CSTORE ? [] : [VARIANTS.cstore]), ...(DIAG ? [VARIANTS.stowNoFsync, VARIANTS.folder] : [])];
  const gw: Record<string, GatewaySample[]> = Object.fromEntries(variants.map((v) => [v.id, []]));
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
    await attempt(k, 'storescu -> storescp', () => measureWire(corpus.dir, k), wire, (s) => rate(s.seconds));
    await attempt(k, 'storescu -> Orthanc', () => measureDirect(corpus.dir), direct, (s) => rate(s.seconds));
    for (const v of variants) {
      await attempt(k, v.label, () => measureGateway(corpus.dir, v), gw[v.id],
        (s) => `ingest ${s.ingestSeconds.toFixed(2)} s, end to end ${rate(s.e2eSeconds)}, peak RSS ${((s.gatewayPeakKiB ?? NaN) / 1024).toFixed(0)} MiB, forwarded at ingest end ${s.atIngestEnd.forwarded}/${N}`);
    }
  }

  // ---- medians and ratios
  const ips = (s: number | null): number | null => (s === null ? null : N / s);
  const mbps = (s: number | null): number | null => (s === null ? null : corpusMB / s);
  const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);
  const r3 = (x: number | null): number | null => (x === null ? null : round(x, 3));
  const pm = (x: number | null, d = 1): number | null => (x === null ? null : round(x, d));
  const wireS = med(wire.map((s) => s.seconds));
  const directS = med(direct.map((s) => s.seconds));
  const wireIps = ips(wireS);
  const directIps = ips(directS);
  const e2eS = (id: string): number | null => med((gw[id] ?? []).map((s) => s.e2eSeconds));
  const ingestS = (id: string): number | null => med((gw[id] ?? []).map((s) => s.ingestSeconds));
  const peakMB = (id: string): number | null => { const k = max((gw[id] ?? []).map((s) => s.gatewayPeakKiB)); return k === null ? null : (k * 1024) / 1e6; };
  // Same-round pairs (gateway round k / direct round k): the view least affected by load drift.
  const paired = (gw.stow ?? []).map((s, i) => (direct[i] ? direct[i].seconds / s.e2eSeconds : null)).filter((x): x is number => x !== null);
  const stowIps = ips(e2eS('stow'));
  const e2eRatio = ratio(stowIps, directIps);
  const stowPeakMB = peakMB('stow');

  const rows: Row[] = [];
  rows.push({ id: 'wire.ips', measure: 'storescu -> storescp (wire ceiling)', value: pm(wireIps), unit: 'inst/s', reference: '-', ratio: null, target: '-', status: 'info' });
  rows.push({ id: 'wire.mbps', measure: 'storescu -> storescp (wire ceiling)', value: pm(mbps(wireS)), unit: 'MB/s', reference: '-', ratio: null, target: '-', status: 'info' });
  rows.push({ id: 'direct.ips', measure: 'storescu -> Orthanc directly', value: pm(directIps), unit: 'inst/s', reference: 'wire ceiling', ratio: r3(ratio(directIps, wireIps)), target: '-', status: 'info' });
  rows.push({ id: 'direct.mbps', measure: 'storescu -> Orthanc directly', value: pm(mbps(directS)), unit: 'MB/s', reference: 'wire ceiling', ratio: r3(ratio(mbps(directS), mbps(wireS))), target: '-', status: 'info' });
  rows.push({ id: 'stow.ingest.ips', measure: 'gateway ingest (storescu exit, spool fsync on)', value: pm(ips(ingestS('stow'))), unit: 'inst/s', reference: 'Orthanc directly', ratio: r3(ratio(ips(ingestS('stow')), directIps)), target: '-', status: 'info' });
  rows.push({
    id: 'stow.e2e.ips', measure: 'gateway end to end, STOW-RS -> Orthanc', value: pm(stowIps), unit: 'inst/s', reference: 'Orthanc directly', ratio: r3(e2eRatio),
    target: `>= ${TARGET_E2E_VS_DIRECT * 100}%`, status: e2eRatio === null ? 'FAIL' : e2eRatio >= TARGET_E2E_VS_DIRECT ? 'PASS' : 'FAIL', headline: true,
    note: `same-round pairs: ${paired.map((x) => `${(100 * x).toFixed(1)}%`).join(', ') || '-'}`,
  });
  rows.push({ id: 'stow.e2e.mbps', measure: 'gateway end to end, STOW-RS -> Orthanc', value: pm(mbps(e2eS('stow'))), unit: 'MB/s', reference: 'Orthanc directly', ratio: r3(ratio(mbps(e2eS('stow')), mbps(directS))), target: '-', status: 'info' });
  rows.push({ id: 'stow.e2e.vs-wire', measure: 'gateway end to end, STOW-RS -> Orthanc', value: pm(stowIps), unit: 'inst/s', reference: 'wire ceiling', ratio: r3(ratio(stowIps, wireIps)), target: '-', status: 'info' });
  rows.push({
    id: 'stow.rss', measure: 'gateway peak RSS (VmHWM, STOW-RS run)', value: pm(stowPeakMB, 0), unit: 'MB', reference: `${TARGET_RSS_MB} MB`, ratio: r3(ratio(stowPeakMB, TARGET_RSS_MB)),
    target: `< ${TARGET_RSS_MB} MB`, status: stowPeakMB === null ? 'FAIL' : stowPeakMB < TARGET_RSS_MB ? 'PASS' : 'FAIL', headline: true, note: 'highest of the rounds; 1 MB = 10^6 bytes',
  });
  const infoRows = (id: string, label: string): void => {
    if (!gw[id]?.length) return;
    rows.push({ id: `${id}.ingest.ips`, measure: `${label}: ingest`, value: pm(ips(ingestS(id))), unit: 'inst/s', reference: 'Orthanc directly', ratio: r3(ratio(ips(ingestS(id)), directIps)), target: '-', status: 'info' });
    rows.push({ id: `${id}.e2e.ips`, measure: `${label}: end to end`, value: pm(ips(e2eS(id))), unit: 'inst/s', reference: 'Orthanc directly', ratio: r3(ratio(ips(e2eS(id)), directIps)), target: '-', status: 'info' });
    rows.push({ id: `${id}.e2e.mbps`, measure: `${label}: end to end`, value: pm(mbps(e2eS(id))), unit: 'MB/s', reference: 'Orthanc directly', ratio: r3(ratio(mbps(e2eS(id)), mbps(directS))), target: '-', status: 'info' });
    rows.push({ id: `${id}.rss`, measure: `${label}: peak RSS`, value: pm(peakMB(id), 0), unit: 'MB', reference: `${TARGET_RSS_MB} MB`, ratio: r3(ratio(peakMB(id), TARGET_RSS_MB)), target: '-', status: 'info' });
  };
  infoRows('cstore', 'gateway, C-STORE -> Orthanc');
  infoRows('stowNoFsync', 'gateway, spool fsync off, STOW-RS');
  infoRows('folder', 'gateway, folder destination');

  // ---- where the time goes (medians over rounds)
  const diag = (samples: GatewaySample[] | undefined) => samples?.length ? {
    ingestSeconds: r2(med(samples.map((s) => s.ingestSeconds))),
    e2eSeconds: r2(med(samples.map((s) => s.e2eSeconds))),
    drainAfterIngestSeconds: r2(med(samples.map((s) => s.e2eSeconds - s.ingestSeconds))),
    forwardedAtIngestEnd: med(samples.map((s) => s.atIngestEnd.forwarded)),
    deidentifiedAtIngestEnd: med(samples.map((s) => s.atIngestEnd.deidentified)),
    /** Forwarding rate while storescu was still sending, and after it finished. */
    forwardIpsDuringIngest: r2(med(samples.map((s) => s.atIngestEnd.forwarded / s.ingestSeconds))),
    forwardIpsAfterIngest: r2(med(samples.map((s) => (N - s.atIngestEnd.forwarded) / Math.max(1e-3, s.e2eSeconds - s.ingestSeconds)))),
    deidentifyMsAvg: r2(med(samples.map((s) => (s.deidSecondsAvg === null ? null : s.deidSecondsAvg * 1000)))),
    forwardMsAvg: r2(med(samples.map((s) => (s.forwardSecondsAvg === null ? null : s.forwardSecondsAvg * 1000)))),
    forwardObservations: med(samples.map((s) => s.forwardObservations)),
    gatewayCpuMsPerInstance: r2(med(samples.map((s) => (s.gatewayCpuSeconds === null ? null : (s.gatewayCpuSeconds * 1000) / N)))),
    orthancCpuMsPerInstance: r2(med(samples.map((s) => (s.orthancCpuSeconds === null ? null : (s.orthancCpuSeconds * 1000) / N)))),
    machineCoresBusy: r2(med(samples.map((s) => s.coresBusy))),
    orthancPeakMB: r2(med(samples.map((s) => (s.orthancPeakKiB === null ? null : (s.orthancPeakKiB * 1024) / 1e6)))),
    gatewayStartRssMB: r2(med(samples.map((s) => (s.gatewayStartKiB === null ? null : (s.gatewayStartKiB * 1024) / 1e6)))),
    gatewayPeakMB: r2(max(samples.map((s) => (s.gatewayPeakKiB === null ? null : (s.gatewayPeakKiB * 1024) / 1e6)))),
    retries: max(samples.map((s) => s.retries)),
    quarantined: max(samples.map((s) => s.quarantined)),
  } : null;
  const diagnosis: Record<string, unknown> = {
    wire: wire.length ? { seconds: r2(wireS), machineCoresBusy: r2(med(wire.map((s) => s.coresBusy))) } : null,
    direct: direct.length ? {
      seconds: r2(directS),
      visibleSeconds: r2(med(direct.map((s) => s.visibleSeconds))),
      orthancCpuMsPerInstance: r2(med(direct.map((s) => (s.orthancCpuSeconds === null ? null : (s.orthancCpuSeconds * 1000) / N)))),
      machineCoresBusy: r2(med(direct.map((s) => s.coresBusy))),
      orthancPeakMB: r2(med(direct.map((s) => (s.orthancPeakKiB === null ? null : (s.orthancPeakKiB * 1024) / 1e6)))),
    } : null,
  };
  for (const v of variants) diagnosis[v.id] = diag(gw[v.id]);

  // ---- CPU profile of one extra STOW-RS run, when the end-to-end target fails (or asked for)
  let profiles: ThreadProfile[] = [];
  let profiled: GatewaySample | null = null;
  const wantProfile = PROFILE === '1' || (PROFILE !== '0' && !(e2eRatio !== null && e2eRatio >= TARGET_E2E_VS_DIRECT));
  if (wantProfile) {
    log('profiling one extra STOW-RS run (node --cpu-prof on the gateway: main thread and workers) ...');
    try {
      ({ profiles, sample: profiled } = await profileGateway(corpus.dir));
    } catch (err) {
      errors.push({ round: 0, measure: 'cpu profile', error: (err as Error).message.slice(0, 4000) });
      log(`profiling FAILED: ${(err as Error).message}`);
    }
  }

  const loadAfter = os.loadavg();
  const out = {
    benchmark: 'gateway',
    started: started.toISOString(),
    finished: new Date().toISOString(),
    instances: N,
    rounds: RUNS,
    corpus: { dir: corpus.dir, files: N, bytes: corpus.bytes, mb: round(corpusMB, 1), version: CORPUS_VERSION, kind: 'CT 512x512x16 bit, explicit VR LE, ~130 attributes' },
    method: {
      tcpNoDelay: true,
      storescu: `storescu -aet ${CALLING_AE} -aec <AE> +sd +r 127.0.0.1 <port> <corpus>`,
      storescp: 'storescp -aet STORESCP -od <tmp> -dhl --single-process +B +xa <port> (test/support/dcmtk-peers.ts)',
      orthanc: 'a fresh Orthanc (test/support/orthanc.ts) per run',
      gateway: 'a fresh `deid-gateway serve` per run (test/support/gateway-process.ts testConfig; spool defaults: fsync on, default workers and maxInFlight; audit to file; pixel-only route)',
      endToEnd: `storescu start -> Orthanc QIDO-RS /instances?limit=1&offset=${N - 1} returns an entry (polled every ${POLL_MS} ms after storescu exits)`,
      peakRss: 'VmHWM of the gateway process (/proc/<pid>/status, worker threads included) just before SIGTERM; highest round',
      order: `interleaved rounds: wire, direct, ${variants.map((v) => v.id).join(', ')}; medians`,
      variants: Object.fromEntries(variants.map((v) => [v.id, v.label])),
    },
    machine: {
      cores: NPROC,
      memMB: Math.round(os.totalmem() / 1e6),
      loadavgBefore: loadBefore.map((x) => round(x, 2)),
      loadavgAfter: loadAfter.map((x) => round(x, 2)),
      cpuPressureBefore: pressureBefore,
      cpuPressureAfter: cpuPressure(),
    },
    versions,
    targets: { e2eVsDirect: TARGET_E2E_VS_DIRECT, peakRssMB: TARGET_RSS_MB },
    rows,
    diagnosis,
    samples: { wire, direct, ...gw },
    profiles: profiles.map((p) => ({ ...p, file: path.basename(p.file), busyMs: busyMs(p) })),
    // The proxy's request list stays out of the JSON (hundreds of lines); its summary is kept.
    profiledRun: profiled ? { ...profiled, httpRequests: undefined, stow: stowRequestStats(profiled.httpRequests ?? [], corpus.bytes / N) } : null,
    errors,
  };
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, `${JSON.stringify(out, null, 2)}\n`);

  console.log(`\ndeid-gateway end to end: ${N} CT instances (${corpusMB.toFixed(1)} MB), ${RUNS} round(s), medians; ${NPROC} cores; load ${loadBefore.map((x) => x.toFixed(2)).join(' ')} -> ${loadAfter.map((x) => x.toFixed(2)).join(' ')}\n`);
  console.log(table(rows));
  for (const r of rows) if (r.note) console.log(`  ${r.id}: ${r.note}`);
  const show = (name: string, d: ReturnType<typeof diag>): void => {
    if (!d) return;
    console.log(`\n${name}: ingest ${d.ingestSeconds} s, end to end ${d.e2eSeconds} s (drain after ingest ${d.drainAfterIngestSeconds} s); at ingest end ${d.deidentifiedAtIngestEnd} de-identified, ${d.forwardedAtIngestEnd} forwarded`);
    console.log(`  forwarding ${d.forwardIpsDuringIngest} inst/s during ingest, ${d.forwardIpsAfterIngest} inst/s after; de-identify ${d.deidentifyMsAvg} ms/inst avg (worker), forward ${d.forwardMsAvg} ms avg over ${d.forwardObservations} observations`);
    console.log(`  CPU: gateway ${d.gatewayCpuMsPerInstance} ms/inst${d.orthancCpuMsPerInstance === null ? '' : `, Orthanc ${d.orthancCpuMsPerInstance} ms/inst`}; machine ${d.machineCoresBusy} of ${NPROC} cores busy; gateway RSS ${d.gatewayStartRssMB} MB after start, peak ${d.gatewayPeakMB} MB${d.orthancPeakMB === null ? '' : `; Orthanc peak ${d.orthancPeakMB} MB`}; retries ${d.retries}, quarantined ${d.quarantined}`);
  };
  const d = diagnosis.direct as { seconds: number; orthancCpuMsPerInstance: number; machineCoresBusy: number } | null;
  if (d) console.log(`\nOrthanc directly: ${d.seconds} s; Orthanc CPU ${d.orthancCpuMsPerInstance} ms/inst; machine ${d.machineCoresBusy} of ${NPROC} cores busy`);
  for (const v of variants) show(v.label, diagnosis[v.id] as ReturnType<typeof diag>);
  if (profiled) {
    const st = stowRequestStats(profiled.httpRequests ?? [], corpus.bytes / N);
    console.log(`\nprofiled STOW-RS run (through a counting proxy, not in the table): end to end ${profiled.e2eSeconds.toFixed(2)} s; ${st.requests} STOW-RS requests, ~${st.instancesPerRequestAvg} instances each (max ~${st.instancesPerRequestMax}), ${st.msAvg} ms each on average, up to ${st.concurrentMax} at once, over ${st.connections} TCP connection(s)`);
  }
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
