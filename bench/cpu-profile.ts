/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and ranks functions by self time and by
 * inclusive time (each sample counted once per function on its stack).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Hotspot {
  fn: string;
  where: string;
  selfMs: number;
  selfPct: number;
  totalMs: number;
  totalPct: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  bySelf: Hotspot[];
  byTotal: Hotspot[];
}

export function summarizeProfile(file: string, top = 15, repoRoot = process.cwd()): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const keyOf = (n: ProfileNode): string => {
    const cf = n.callFrame;
    let url = cf.url.replace(/^file:\/\//, '');
    if (url.startsWith(repoRoot)) url = path.relative(repoRoot, url);
    return `${cf.functionName || '(anonymous)'}\t${url ? `${url}:${cf.lineNumber + 1}` : ''}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000; // delta i+1 is the duration of sample i
    all += dt;
    let node = byId.get(p.samples[i]);
    if (!node) continue;
    const k = keyOf(node);
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      node = byId.get(id)!;
      const key = keyOf(node);
      if (seen.has(key)) continue;
      seen.add(key);
      total.set(key, (total.get(key) ?? 0) + dt);
    }
  }
  const rows = (m: Map<string, number>): Hotspot[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k]) => {
        const [fn, where] = k.split('\t');
        const s = self.get(k) ?? 0;
        const t = total.get(k) ?? 0;
        return { fn, where, selfMs: Math.round(s), selfPct: pct(s, all), totalMs: Math.round(t), totalPct: pct(t, all) };
      });
  // Inclusive ranking: the engine's own functions, not the bootstrap, module wrappers or the loop driver.
  const skip = new Set(['(root)', '(program)', '(idle)']);
  const boring = ([k]: [string, number]): boolean => {
    const [fn, where] = k.split('\t');
    return skip.has(fn) || where.startsWith('node:internal') || where.includes('engine-loop') || (fn === '(anonymous)' && where.endsWith('.js:1'));
  };
  const totalsNoRoot = new Map([...total].filter((e) => !boring(e)));
  return { file, totalMs: Math.round(all), bySelf: rows(self), byTotal: rows(totalsNoRoot) };
}

const pct = (x: number, all: number): number => Math.round((1000 * x) / Math.max(all, 1e-9)) / 10;

export function formatHotspots(s: ProfileSummary): string {
  const line = (h: Hotspot): string =>
    `  ${String(h.selfMs).padStart(6)} ms ${String(h.selfPct).padStart(5)}%  ${String(h.totalMs).padStart(6)} ms ${String(h.totalPct).padStart(5)}%  ${h.fn}  ${h.where}`;
  return [
    `CPU profile ${s.file} (${s.totalMs} ms sampled)`,
    '  by self time:      self          inclusive',
    ...s.bySelf.map(line),
    '  by inclusive time: self          inclusive',
    ...s.byTotal.map(line),
  ].join('\n');
}

if (require.main === module) {
  const f = process.argv[2];
  if (!f) throw new Error('usage: node dist/bench/cpu-profile.js FILE.cpuprofile [TOP]');
  process.stdout.write(`${formatHotspots(summarizeProfile(f, Number(process.argv[3] ?? 20)))}\n`);
}
