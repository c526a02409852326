/**
 * Diagnosis helpers for bench/gateway.ts and bench/export.ts (never used for the timed measures):
 *  - the gateway under `node --cpu-prof` (main thread and worker threads write their own
 *    .cpuprofile; `--cpu-prof` is not allowed in NODE_OPTIONS, so this spawns the CLI itself,
 *    like test/support/gateway-process.ts does);
 *    and the hotspots of its threads' profiles;
 *  - a counting HTTP proxy in front of Orthanc: how many STOW-RS requests, how many bytes each.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { formatHotspots, ProfileSummary, summarizeProfile } from './cpu-profile';
import { RunError } from './report';
import { GatewayProcess, startGatewayProcess } from '../test/support/gateway-process';

/** The gateway process of the tests, under `node --cpu-prof` (every thread writes a profile). */
export function startProfiledGateway(dir: string, config: Record<string, unknown>, profileDir: string): Promise<GatewayProcess> {
  return startGatewayProcess(dir, config, {}, ['--cpu-prof', '--cpu-prof-dir', profileDir]);
}

export interface ProxyRequest {
  method: string;
  url: string;
  status: number;
  requestBytes: number;
  /** Request start -> response end, ms. */
  ms: number;
  /** Requests in flight (this one included) when it started. */
  concurrent: number;
  /** Which client TCP connection carried it (1, 2, ...): reuse shows keep-alive. */
  connection: number;
}

export interface CountingProxy {
  port: number;
  requests: ProxyRequest[];
  close(): Promise<void>;
}

/** A loopback HTTP proxy to 127.0.0.1:targetPort that records every request. */
export async function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  const requests: ProxyRequest[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  let inFlight = 0;
  const connections = new WeakMap<object, number>();
  let nextConnection = 1;
  const server = http.createServer((req, res) => {
    if (!connections.has(req.socket)) connections.set(req.socket, nextConnection++);
    const t0 = process.hrtime.bigint();
    inFlight++;
    const rec: ProxyRequest = { method: req.method ?? '', url: req.url ?? '', status: 0, requestBytes: 0, ms: 0, concurrent: inFlight, connection: connections.get(req.socket)! };
    req.on('data', (d: Buffer) => { rec.requestBytes += d.length; });
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      rec.status = ur.statusCode ?? 0;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
      ur.on('end', () => {
        inFlight--;
        rec.ms = Number(process.hrtime.bigint() - t0) / 1e6;
        requests.push(rec);
      });
    });
    up.on('error', (e) => {
      inFlight--;
      res.writeHead(502);
      res.end(String(e));
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () => new Promise<void>((resolve) => {
      agent.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

interface RawProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

/**
 * CPU time of one .cpuprofile by the innermost package or project folder on each sample's stack
 * (`dicomweb-client`, `xhr2`, `dcmjs-dimse`, `src/ingest`, `src/forward`, ...), so native leaves
 * (fsync, unlink, Buffer copies, postMessage) count for whoever called them. Samples with no
 * such frame are named by their leaf: `(idle)`, `(garbage collector)`, `(program)`, or
 * `node internals`. Milliseconds, largest first.
 */
export function timeByModule(file: string): Array<{ module: string; ms: number }> {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as RawProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const moduleOf = (url: string): string | null => {
    const u = url.replace(/^file:\/\//, '');
    const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
    if (nm) return nm[1];
    const src = /\/dist\/(src\/[^/]+|bench|test)\//.exec(u);
    return src ? src[1] : null;
  };
  const memo = new Map<number, string>();
  const category = (leaf: number): string => {
    const hit = memo.get(leaf);
    if (hit) return hit;
    let name: string | null = null;
    for (let id: number | undefined = leaf; id !== undefined && name === null; id = parent.get(id)) name = moduleOf(byId.get(id)!.callFrame.url);
    if (name === null) {
      const fn = byId.get(leaf)!.callFrame.functionName;
      name = fn.startsWith('(') ? fn : 'node internals';
    }
    memo.set(leaf, name);
    return name;
  };
  const ms = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const c = category(p.samples[i]);
    ms.set(c, (ms.get(c) ?? 0) + dt);
  }
  return [...ms].map(([module, v]) => ({ module, ms: Math.round(v) })).sort((a, b) => b.ms - a.ms);
}

/** One thread's profile: its hotspots and its time by package/folder. */
export type ThreadProfile = ProfileSummary & { byModule: Array<{ module: string; ms: number }> };

/** Sampled time minus idle. */
export const busyMs = (p: ProfileSummary): number => p.totalMs - (p.bySelf.find((h) => h.fn === '(idle)')?.selfMs ?? 0);

/** Profile when asked (`setting` '1'), never ('0'), or by default when the target is missed (or not measured). */
export const wantProfile = (setting: string | undefined, targetMet: boolean): boolean => setting === '1' || (setting !== '0' && !targetMet);

/** The .cpuprofile files in `dir` (but those in `before`), summarised; busiest thread first. */
export function threadProfiles(dir: string, repo: string, before: Set<string> = new Set()): ThreadProfile[] {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f)).map((f) => path.join(dir, f));
  const summaries = files.map((f) => ({ ...summarizeProfile(f, 25, repo), byModule: timeByModule(f) }));
  return summaries.sort((a, b) => busyMs(b) - busyMs(a));
}

/** The profiles as the JSON keeps them: file names only, with their busy time. */
export const profilesJson = (profiles: ThreadProfile[]) => profiles.map((p) => ({ ...p, file: path.basename(p.file), busyMs: busyMs(p) }));

/** Hotspots and busy time by package/folder of every thread busy for 200 ms or more. */
export function printProfiles(profiles: ThreadProfile[]): void {
  for (const p of profiles) {
    if (busyMs(p) < 200) continue; // an idle thread
    console.log(`\n${formatHotspots({ ...p, file: `${path.basename(p.file)}, ${busyMs(p)} ms busy`, bySelf: p.bySelf.slice(0, 12), byTotal: p.byTotal.slice(0, 12) })}`);
    const busy = p.byModule.filter((m) => m.module !== '(idle)');
    const all = busy.reduce((a, m) => a + m.ms, 0);
    console.log(`  busy time by innermost package/folder on the stack (native calls count for their caller):\n${busy.slice(0, 14).map((m) => `    ${String(m.ms).padStart(6)} ms ${(100 * m.ms / Math.max(1, all)).toFixed(1).padStart(5)}%  ${m.module}`).join('\n')}`);
  }
}

/**
 * One extra run under `node --cpu-prof` (`fn`), when `want`: its thread profiles and its sample;
 * a failure is logged and kept in `errors` (round 0, 'cpu profile'), never the end of the benchmark.
 */
export async function profiledRun<S>(
  want: boolean, what: string, fn: () => Promise<{ profiles: ThreadProfile[]; sample: S }>, errors: RunError[], log: (s: string) => void,
): Promise<{ profiles: ThreadProfile[]; sample: S | null }> {
  if (!want) return { profiles: [], sample: null };
  log(`profiling one extra ${what} (node --cpu-prof on the gateway: main thread and workers) ...`);
  try {
    return await fn();
  } catch (err) {
    errors.push({ round: 0, measure: 'cpu profile', error: (err as Error).message.slice(0, 4000) });
    log(`profiling FAILED: ${(err as Error).message}`);
    return { profiles: [], sample: null };
  }
}
