/**
 * `npm run bench:gateway`: the gateway end to end, as ratios measured in the same run on the
 * same corpus (never against hard-coded numbers):
 *
 *   1. storescu -> DCMTK storescp (into a temp folder): the wire ceiling;
 *   2. storescu -> Orthanc's DICOM port directly: wall time until storescu exits;
 *   3. storescu -> gateway -> Orthanc (STOW-RS): from storescu's start until Orthanc holds all N
 *      instances (its statistics, polled every 20 ms once storescu has exited) and QIDO-RS lists
 *      them (storescu's own exit = the ingest rate); a fresh gateway (spool fsync on,
 *      default workers) and a fresh Orthanc per round; peak RSS = the gateway process's VmHWM
 *      (worker threads included) read just before it is stopped;
 *   3b. the same two after an untimed warm-up of BENCH_GATEWAY_WARMUP instances (default 100,
 *      other UIDs, deleted at Orthanc before the timed run) through the same peer: the steady
 *      state of a gateway that has been running (a fresh process spends a fifth of its CPU in
 *      V8's optimizing compiler over 500 instances), with Orthanc directly warmed the same way;
 *   4. (info) the same with a C-STORE destination to Orthanc;
 *   5. (info, diagnosis) the STOW-RS run with the spool's fsync off, and the gateway writing to a
 *      folder destination (no network forward), to see where the time goes; and, when the
 *      end-to-end target fails (or BENCH_GATEWAY_PROFILE=1), one extra STOW-RS run under
 *      `node --cpu-prof` (main thread and worker threads), summarised by bench/cpu-profile.ts.
 *
 * Targets: (3) >= 70% of (2) in instances/s, and the same for (3b) against (2) warmed; gateway
 * peak RSS < 400 MB.
 * Every peer runs with TCP_NODELAY=1 on loopback. Rounds are interleaved (every measure once, then
 * again) and medians taken, so load from other work on the machine spreads over all measures;
 * os.loadavg() and /proc/pressure/cpu before and after, and the cores busy during each run, are
 * in the JSON.
 * Prints a table, writes bench/results/gateway-latest.json; exit code 0 even when a target fails.
 *
 * Environment: BENCH_GATEWAY_N (instances, default 500), BENCH_GATEWAY_RUNS (rounds, default 3),
 * BENCH_GATEWAY_SKIP_CSTORE=1, BENCH_GATEWAY_DIAG=0 (skip the diagnosis variants),
 * BENCH_GATEWAY_WARMUP (instances of the warm-up, 0 = no warm measures),
 * BENCH_GATEWAY_PROFILE=1|0 (always / never profile; default: when the target fails),
 * BENCH_GATEWAY_PROFILE_DIR (keep the .cpuprofile files there), BENCH_DIR (work dir, default
 * $TMPDIR/deid-bench, corpus cache), BENCH_GATEWAY_RESULTS (default bench/results/gateway-latest.json).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startStorescp } from '../test/support/dcmtk-peers';
import { Orthanc } from '../test/support/orthanc';
import { CORPUS_VERSION, ensureCorpus, WARMUP_ROOT } from './corpus';
import {
  CountingProxy, printProfiles, profiledRun, profilesJson, ProxyRequest, startCountingProxy, ThreadProfile, threadProfiles, wantProfile,
} from './gateway-profile';
import {
  coresBusy, cpuDelta, cpuSeconds, ForwardStats, forwardMsDiag, forwardStats, gatewayRssDiag, keptMetrics, troubleDiag, machineCpu, memoryKiB, metricSum, versionLine,
} from './gateway-proc';
import { gitDirtySrc, gitHead, loadBefore as takeLoadBefore, loadLine, machineInfo, runTimes } from './machine';
import {
  benchGatewayConfig, checkDelivered, checkPrerequisites, gatewayMetrics, onCleanup, orthanc, orthancCount, runBench, sync, withDestination, withGateway,
} from './peers';
import { benchSettings, freeBytes, listFiles, mb, now, round, rmrf, run, RunResult } from './util';
import {
  atLeastRow, attempts, infoRow, kibToMB, med, medianBy, msPerInstance, peakMBBy, peakRssRow, pm, printTable, printVerdict, r2, r3, ratio, Row, sameRoundNote, samplesByVariant, throughput, writeJson,
} from './report';

const REPO = path.resolve(__dirname, '../..');
const N = Math.max(1, Number(process.env.BENCH_GATEWAY_N ?? 500));
const SKIP_CSTORE = process.env.BENCH_GATEWAY_SKIP_CSTORE === '1';
/**
 * Instances sent (untimed) before the warm measures: a deployed gateway runs for days, and in a
 * fresh process V8's optimizing compiler alone took 18% of the gateway's CPU over 500 instances
 * (perf). The warm-up corpus has other UIDs (no cache of the timed run is warm) and is deleted
 * from Orthanc before the timed run; Orthanc directly gets the same warm-up.
 */
const WARMUP = Math.max(0, Number(process.env.BENCH_GATEWAY_WARMUP ?? 100));
const { runs: RUNS, diag: DIAG, profile: PROFILE, work: WORK, results: RESULTS } = benchSettings(REPO, 'gateway');
const NPROC = os.availableParallelism();
const POLL_MS = 150;
/** Polling of Orthanc's statistics for the end of a gateway run (see arrivedAt in measureGateway). */
const ARRIVAL_POLL_MS = 20;
/** Give up on one end-to-end run after this long (the gateway is then reported as failing). */
const E2E_TIMEOUT_S = Math.max(300, N * 1.0);

const TARGET_E2E_VS_DIRECT = 0.7;
const TARGET_RSS_MB = 400;
const CALLING_AE = 'STORESCU';

const log = (s: string): void => void process.stderr.write(`[bench:gateway] ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ENV = { ...process.env, TCP_NODELAY: '1' };

// ---------------------------------------------------------------- peers

/** storescu of the whole corpus folder in one association; wall time from spawn to exit. */
function storescu(corpusDir: string, port: number, calledAE: string): Promise<RunResult> {
  return run('storescu', ['-aet', CALLING_AE, '-aec', calledAE, '+sd', '+r', '127.0.0.1', String(port), corpusDir], { env: ENV });
}

function checkStorescu(r: RunResult, what: string): void {
  if (r.code !== 0) throw new Error(`storescu -> ${what} exited with ${r.code ?? r.signal}:\n${(r.stderr + r.stdout).slice(-3000)}`);
}

/** Does Orthanc's QIDO-RS list at least `n` instances? (one entry at offset n-1; ~40 ms of Orthanc's time with 500 stored) */
async function qidoHasAtLeast(o: Orthanc, n: number): Promise<boolean> {
  const r = await fetch(`${o.dicomwebUrl}/instances?limit=1&offset=${n - 1}`, { headers: { Accept: 'application/dicom+json' }, signal: AbortSignal.timeout(10_000) });
  if (r.status === 204) return false;
  if (!r.ok) throw new Error(`QIDO: HTTP ${r.status}`);
  const list = (await r.json()) as unknown[];
  return list.length > 0;
}

/** Deletes every patient (so every instance) from Orthanc and waits until it holds none. */
async function clearOrthanc(o: Orthanc): Promise<void> {
  const ids = (await (await fetch(`${o.httpUrl}/patients`)).json()) as string[];
  for (const id of ids) {
    const r = await fetch(`${o.httpUrl}/patients/${id}`, { method: 'DELETE' });
    if (!r.ok) throw new Error(`Orthanc DELETE /patients/${id}: HTTP ${r.status}`);
  }
  const t0 = now();
  while ((await orthancCount(o)) !== 0) {
    if (now() - t0 > 60) throw new Error('Orthanc still holds instances after the warm-up was deleted');
    await sleep(POLL_MS);
  }
}

/** Polls until `done()`; fails after E2E_TIMEOUT_S with `what`. */
async function waitUntil(what: string, done: () => Promise<boolean>): Promise<void> {
  const t0 = now();
  while (!(await done())) {
    if (now() - t0 > E2E_TIMEOUT_S) throw new Error(`timed out waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

// ---------------------------------------------------------------- the measures

interface WireSample { seconds: number; received: number; coresBusy: number; load1: number }
interface DirectSample { seconds: number; visibleSeconds: number; orthancCpuSeconds: number | null; orthancPeakKiB: number | null; coresBusy: number; load1: number }
interface TimelinePoint { t: number; received: number; deidentified: number; forwarded: number }
interface GatewaySample extends ForwardStats {
  /** storescu start -> storescu exit: every instance acknowledged (fsync'd in the spool). */
  ingestSeconds: number;
  /** storescu start -> Orthanc holds N instances (and QIDO lists them). */
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

async function measureDirect(corpusDir: string, warmDir?: string): Promise<DirectSample> {
  const { o, dispose } = await orthanc();
  try {
    if (warmDir) {
      checkStorescu(await storescu(warmDir, o.dicomPort, o.aet), 'Orthanc (warm-up)');
      await waitUntil('the warm-up at Orthanc', () => qidoHasAtLeast(o, WARMUP));
      await clearOrthanc(o);
    }
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
      orthancCpuSeconds: cpuDelta(cpu0, cpu1),
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
  /** WARMUP instances go through the gateway (untimed, then deleted at Orthanc) before the timed run. */
  warm?: boolean;
}

const VARIANTS: Record<string, Variant> = {
  stow: { id: 'stow', label: 'storescu -> gateway -> STOW-RS -> Orthanc', dest: 'stow', fsync: true },
  cstore: { id: 'cstore', label: 'storescu -> gateway -> C-STORE -> Orthanc', dest: 'cstore', fsync: true },
  stowNoFsync: { id: 'stowNoFsync', label: 'storescu -> gateway (spool fsync off) -> STOW-RS -> Orthanc', dest: 'stow', fsync: false },
  folder: { id: 'folder', label: 'storescu -> gateway -> folder destination', dest: 'folder', fsync: true },
  stowWarm: { id: 'stowWarm', label: 'storescu -> warm gateway -> STOW-RS -> Orthanc', dest: 'stow', fsync: true, warm: true },
};

/**
 * One gateway run: a fresh Orthanc (unless the destination is a folder) and a fresh gateway;
 * storescu start -> every instance at the destination. With `profileDir`, the gateway runs
 * under `node --cpu-prof` (its numbers are then not comparable and not used in the table).
 */
async function measureGateway(corpusDir: string, v: Variant, profileDir?: string, warmDir?: string): Promise<GatewaySample> {
  const dir = path.join(WORK, `gw-${v.id}-${process.pid}`);
  return withDestination(dir, v.dest !== 'folder', async (o, folder) => {
    let proxy: CountingProxy | null = null;
    try {
      if (profileDir && o && v.dest === 'stow') proxy = await startCountingProxy(Number(new URL(o.httpUrl).port));
      const destination = v.dest === 'stow'
        ? { type: 'stow-rs', url: proxy ? `http://127.0.0.1:${proxy.port}/dicom-web` : o!.dicomwebUrl }
        : v.dest === 'cstore'
          ? { type: 'c-store', aeTitle: o!.aet, host: '127.0.0.1', port: o!.dicomPort }
          : { type: 'folder', path: folder };
      return await withGateway(dir, benchGatewayConfig(dir, destination, v.fsync), profileDir, async (g) => {
        const gatewayStartKiB = memoryKiB(g.pid)?.rss ?? null;
        // Counters at the start of the timed run (the warm-up's instances are not counted).
        const base = { received: 0, deidentified: 0, forwarded: 0 };
        if (v.warm) {
          if (!warmDir || !o) throw new Error('a warm variant needs the warm-up corpus and an Orthanc destination');
          checkStorescu(await storescu(warmDir, g.dimsePort, 'DEIDGW'), 'gateway (warm-up)');
          await waitUntil('the warm-up at Orthanc', () => qidoHasAtLeast(o, WARMUP));
          await clearOrthanc(o);
          const m0 = await gatewayMetrics(g);
          base.received = metricSum(m0, 'deid_instances_received_total');
          base.deidentified = metricSum(m0, 'deid_instances_deidentified_total');
          base.forwarded = metricSum(m0, 'deid_instances_forwarded_total');
        }
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
                received: metricSum(m, 'deid_instances_received_total') - base.received,
                deidentified: metricSum(m, 'deid_instances_deidentified_total') - base.deidentified,
                forwarded: metricSum(m, 'deid_instances_forwarded_total') - base.forwarded,
              });
            } catch {
              /* a missed sample */
            }
            await sleep(2000);
          }
        })();
        // When everything has arrived: the time of the poll that saw Orthanc hold all N (its
        // statistics, 2-3 ms a call), once QIDO-RS lists the N-th too (a QIDO takes ~40 ms of
        // Orthanc's time: polled alone, every poll would add its length and the sleep to the end
        // time, while Orthanc directly is timed by storescu's exit). The folder: the gateway's counter.
        const arrivedAt = async (): Promise<number | null> => {
          if (!o) return metricSum(await gatewayMetrics(g), 'deid_instances_forwarded_total') - base.forwarded >= N ? now() : null;
          if ((await orthancCount(o)) < N) return null;
          const at = now();
          return (await qidoHasAtLeast(o, N)) ? at : null;
        };
        const arrivedCount = async (): Promise<number> => (o ? orthancCount(o) : metricSum(await gatewayMetrics(g), 'deid_instances_forwarded_total') - base.forwarded);

        try {
          const r = await storescu(corpusDir, g.dimsePort, 'DEIDGW');
          const ingestSeconds = now() - t0;
          checkStorescu(r, 'gateway');
          const mi = await gatewayMetrics(g);
          const atIngestEnd = {
            received: metricSum(mi, 'deid_instances_received_total') - base.received,
            deidentified: metricSum(mi, 'deid_instances_deidentified_total') - base.deidentified,
            forwarded: metricSum(mi, 'deid_instances_forwarded_total') - base.forwarded,
          };
          let lastCheck = now();
          let at: number | null;
          while ((at = await arrivedAt()) === null) {
            if (now() - t0 > E2E_TIMEOUT_S) throw new Error(`after ${E2E_TIMEOUT_S} s the destination has ${await arrivedCount()} of ${N} instances`);
            if (now() - lastCheck > 10) {
              lastCheck = now();
              const q = metricSum(await gatewayMetrics(g), 'deid_instances_quarantined_total');
              if (q > 0) throw new Error(`the gateway quarantined ${q} instance(s)`);
            }
            await sleep(o ? ARRIVAL_POLL_MS : POLL_MS);
          }
          const e2eSeconds = at - t0;
          const c1 = machineCpu();
          const gCpu1 = cpuSeconds(g.pid);
          const oCpu1 = o ? cpuSeconds(o.pid) : null;
          sampling = false;
          await sampler;
          // Peak RSS just before stopping (the gateway is idle now; VmHWM is its high-water mark).
          const gMem = memoryKiB(g.pid);
          const oMem = o ? memoryKiB(o.pid) : null;
          const m = await gatewayMetrics(g);

          // What arrived: N distinct de-identified instances (new UIDs), nothing quarantined.
          await checkDelivered(o, 'Orthanc', folder, N);

          return {
            ingestSeconds,
            e2eSeconds,
            gatewayPeakKiB: gMem?.hwm ?? null,
            gatewayStartKiB,
            gatewayCpuSeconds: cpuDelta(gCpu0, gCpu1),
            orthancCpuSeconds: cpuDelta(oCpu0, oCpu1),
            orthancPeakKiB: oMem?.hwm ?? null,
            coresBusy: coresBusy(c0, c1, NPROC),
            load1,
            atIngestEnd,
            ...forwardStats(m),
            timeline,
            metrics: keptMetrics(m),
            ...(proxy ? { httpRequests: [...proxy.requests] } : {}),
          };
        } finally {
          sampling = false;
          await sampler;
        }
      });
    } finally {
      await proxy?.close();
    }
  });
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
    // Busiest thread first (the main thread is the one with the DIMSE, spool and forward work).
    return { profiles: threadProfiles(profDir, REPO, before), sample };
  } finally {
    if (!keep) rmrf(profDir);
  }
}

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

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const started = new Date();
  const loadBefore = takeLoadBefore();
  checkPrerequisites(REPO, ['storescu', 'storescp']);

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
  const warm = WARMUP > 0 ? ensureCorpus(path.join(WORK, `corpus-v${CORPUS_VERSION}-warmup-${WARMUP}`), WARMUP, log, WARMUP_ROOT) : null;

  const versions: Record<string, string | null> = {
    node: process.version,
    storescu: versionLine('storescu', ['--version']),
    storescp: versionLine('storescp', ['--version']),
    git: gitHead(REPO),
    gitDirtySrc: gitDirtySrc(REPO).length ? 'yes' : 'no',
  };

  const wire: WireSample[] = [];
  const direct: DirectSample[] = [];
  const directWarm: DirectSample[] = [];
  const variants = [VARIANTS.stow, ...(warm ? [VARIANTS.stowWarm] : []), ...(SKIP_CSTORE ? [] : [VARIANTS.cstore]), ...(DIAG ? [VARIANTS.stowNoFsync, VARIANTS.folder] : [])];
  const gw = samplesByVariant<GatewaySample>(variants);
  const { errors, attempt, attemptVariants } = attempts(log);
  const { ips, mbps, rate } = throughput(N, corpusMB);

  for (let k = 1; k <= RUNS; k++) {
    await attempt(k, 'storescu -> storescp', () => measureWire(corpus.dir, k), wire, (s) => rate(s.seconds));
    await attempt(k, 'storescu -> Orthanc', () => measureDirect(corpus.dir), direct, (s) => rate(s.seconds));
    if (warm) await attempt(k, `storescu -> Orthanc after a warm-up of ${WARMUP}`, () => measureDirect(corpus.dir, warm.dir), directWarm, (s) => rate(s.seconds));
    await attemptVariants(k, variants, (v) => measureGateway(corpus.dir, v, undefined, warm?.dir), gw,
      (s) => `ingest ${s.ingestSeconds.toFixed(2)} s, end to end ${rate(s.e2eSeconds)}, peak RSS ${((s.gatewayPeakKiB ?? NaN) / 1024).toFixed(0)} MiB, forwarded at ingest end ${s.atIngestEnd.forwarded}/${N}`);
  }

  // ---- medians and ratios
  const wireS = med(wire.map((s) => s.seconds));
  const directS = med(direct.map((s) => s.seconds));
  const wireIps = ips(wireS);
  const directIps = ips(directS);
  const e2eS = medianBy(gw, (s) => s.e2eSeconds);
  const ingestS = medianBy(gw, (s) => s.ingestSeconds);
  const peakMB = peakMBBy(gw);
  const stowIps = ips(e2eS('stow'));
  const e2eRatio = ratio(stowIps, directIps);

  const rows: Row[] = [];
  rows.push(infoRow('wire.ips', 'storescu -> storescp (wire ceiling)', pm(wireIps), 'inst/s'));
  rows.push(infoRow('wire.mbps', 'storescu -> storescp (wire ceiling)', pm(mbps(wireS)), 'MB/s'));
  rows.push(infoRow('direct.ips', 'storescu -> Orthanc directly', pm(directIps), 'inst/s', 'wire ceiling', r3(ratio(directIps, wireIps))));
  rows.push(infoRow('direct.mbps', 'storescu -> Orthanc directly', pm(mbps(directS)), 'MB/s', 'wire ceiling', r3(ratio(mbps(directS), mbps(wireS)))));
  rows.push(infoRow('stow.ingest.ips', 'gateway ingest (storescu exit, spool fsync on)', pm(ips(ingestS('stow'))), 'inst/s', 'Orthanc directly', r3(ratio(ips(ingestS('stow')), directIps))));
  rows.push(atLeastRow('stow.e2e.ips', 'gateway end to end, STOW-RS -> Orthanc', stowIps, 'inst/s', 'Orthanc directly', e2eRatio, TARGET_E2E_VS_DIRECT,
    sameRoundNote(direct.map((s) => s.seconds), (gw.stow ?? []).map((s) => s.e2eSeconds))));
  rows.push(infoRow('stow.e2e.mbps', 'gateway end to end, STOW-RS -> Orthanc', pm(mbps(e2eS('stow'))), 'MB/s', 'Orthanc directly', r3(ratio(mbps(e2eS('stow')), mbps(directS)))));
  rows.push(infoRow('stow.e2e.vs-wire', 'gateway end to end, STOW-RS -> Orthanc', pm(stowIps), 'inst/s', 'wire ceiling', r3(ratio(stowIps, wireIps))));
  rows.push(peakRssRow('stow.rss', 'gateway peak RSS (VmHWM, STOW-RS run)', peakMB('stow'), TARGET_RSS_MB, true));
  if (warm && directWarm.length && gw.stowWarm?.length) {
    // Steady state: both sides after the same untimed warm-up, compared round by round too.
    const directWarmS = med(directWarm.map((s) => s.seconds));
    const warmIps = ips(e2eS('stowWarm'));
    rows.push(infoRow('direct.warm.ips', `storescu -> Orthanc directly, after ${WARMUP} warm-up instances`, pm(ips(directWarmS)), 'inst/s', 'wire ceiling', r3(ratio(ips(directWarmS), wireIps))));
    rows.push(atLeastRow('stowWarm.e2e.ips', `warm gateway (after ${WARMUP} instances) end to end, STOW-RS -> Orthanc`, warmIps, 'inst/s', 'Orthanc directly, warm', ratio(warmIps, ips(directWarmS)), TARGET_E2E_VS_DIRECT,
      sameRoundNote(directWarm.map((s) => s.seconds), gw.stowWarm.map((s) => s.e2eSeconds))));
    rows.push(peakRssRow('stowWarm.rss', 'warm gateway peak RSS (VmHWM, warm-up included)', peakMB('stowWarm'), TARGET_RSS_MB, false));
  }
  const infoRows = (id: string, label: string): void => {
    if (!gw[id]?.length) return;
    rows.push(infoRow(`${id}.ingest.ips`, `${label}: ingest`, pm(ips(ingestS(id))), 'inst/s', 'Orthanc directly', r3(ratio(ips(ingestS(id)), directIps))));
    rows.push(infoRow(`${id}.e2e.ips`, `${label}: end to end`, pm(ips(e2eS(id))), 'inst/s', 'Orthanc directly', r3(ratio(ips(e2eS(id)), directIps))));
    rows.push(infoRow(`${id}.e2e.mbps`, `${label}: end to end`, pm(mbps(e2eS(id))), 'MB/s', 'Orthanc directly', r3(ratio(mbps(e2eS(id)), mbps(directS)))));
    rows.push(infoRow(`${id}.rss`, `${label}: peak RSS`, pm(peakMB(id), 0), 'MB', `${TARGET_RSS_MB} MB`, r3(ratio(peakMB(id), TARGET_RSS_MB))));
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
    ...forwardMsDiag(samples),
    forwardObservations: med(samples.map((s) => s.forwardObservations)),
    gatewayCpuMsPerInstance: r2(med(samples.map((s) => msPerInstance(s.gatewayCpuSeconds, N)))),
    orthancCpuMsPerInstance: r2(med(samples.map((s) => msPerInstance(s.orthancCpuSeconds, N)))),
    machineCoresBusy: r2(med(samples.map((s) => s.coresBusy))),
    orthancPeakMB: r2(med(samples.map((s) => kibToMB(s.orthancPeakKiB)))),
    ...gatewayRssDiag(samples),
    ...troubleDiag(samples),
  } : null;
  const diagnosis: Record<string, unknown> = {
    wire: wire.length ? { seconds: r2(wireS), machineCoresBusy: r2(med(wire.map((s) => s.coresBusy))) } : null,
    direct: direct.length ? {
      seconds: r2(directS),
      visibleSeconds: r2(med(direct.map((s) => s.visibleSeconds))),
      orthancCpuMsPerInstance: r2(med(direct.map((s) => msPerInstance(s.orthancCpuSeconds, N)))),
      machineCoresBusy: r2(med(direct.map((s) => s.coresBusy))),
      orthancPeakMB: r2(med(direct.map((s) => kibToMB(s.orthancPeakKiB)))),
    } : null,
  };
  for (const v of variants) diagnosis[v.id] = diag(gw[v.id]);

  // ---- CPU profile of one extra STOW-RS run, when the end-to-end target fails (or asked for)
  const { profiles, sample: profiled } = await profiledRun(wantProfile(PROFILE, e2eRatio !== null && e2eRatio >= TARGET_E2E_VS_DIRECT), 'STOW-RS run', () => profileGateway(corpus.dir), errors, log);

  const loadAfter = os.loadavg();
  const out = {
    ...runTimes('gateway', started),
    instances: N,
    rounds: RUNS,
    corpus: { dir: corpus.dir, files: N, bytes: corpus.bytes, mb: round(corpusMB, 1), version: CORPUS_VERSION, kind: 'CT 512x512x16 bit, explicit VR LE, ~130 attributes' },
    method: {
      tcpNoDelay: true,
      storescu: `storescu -aet ${CALLING_AE} -aec <AE> +sd +r 127.0.0.1 <port> <corpus>`,
      storescp: 'storescp -aet STORESCP -od <tmp> -dhl --single-process +B +xa <port> (test/support/dcmtk-peers.ts)',
      orthanc: 'a fresh Orthanc (test/support/orthanc.ts) per run',
      gateway: 'a fresh `deid-gateway serve` per run (test/support/gateway-process.ts testConfig; spool defaults: fsync on, default workers and maxInFlight; audit to file; pixel-only route)',
      endToEnd: `storescu start -> the poll of Orthanc's /statistics (every ${ARRIVAL_POLL_MS} ms after storescu exits) that shows ${N} instances, once QIDO-RS /instances?limit=1&offset=${N - 1} returns an entry (folder destination: the gateway's forwarded counter, every ${POLL_MS} ms)`,
      peakRss: 'VmHWM of the gateway process (/proc/<pid>/status, worker threads included) just before SIGTERM; highest round',
      order: `interleaved rounds: wire, direct,${warm ? ' direct after warm-up,' : ''} ${variants.map((v) => v.id).join(', ')}; medians`,
      warmup: warm ? `${WARMUP} instances of the same kind under other UIDs (${warm.dir}) sent untimed through the same peer (gateway or Orthanc directly), then deleted at Orthanc; the gateway's counters and CPU are taken from after the warm-up (its forward/de-identify latency histograms include it)` : 'off',
      variants: Object.fromEntries(variants.map((v) => [v.id, v.label])),
    },
    machine: machineInfo(NPROC, loadBefore, loadAfter),
    versions,
    targets: { e2eVsDirect: TARGET_E2E_VS_DIRECT, peakRssMB: TARGET_RSS_MB },
    rows,
    diagnosis,
    samples: { wire, direct, directWarm, ...gw },
    profiles: profilesJson(profiles),
    // The proxy's request list stays out of the JSON (hundreds of lines); its summary is kept.
    profiledRun: profiled ? { ...profiled, httpRequests: undefined, stow: stowRequestStats(profiled.httpRequests ?? [], corpus.bytes / N) } : null,
    errors,
  };
  writeJson(RESULTS, out);

  console.log(`\ndeid-gateway end to end: ${N} CT instances (${corpusMB.toFixed(1)} MB), ${RUNS} round(s), medians; ${NPROC} cores; ${loadLine(loadBefore, loadAfter)}\n`);
  printTable(rows);
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
  printProfiles(profiles);
  printVerdict(rows, errors, REPO, RESULTS);
  return 0;
}

runBench(main, log);
