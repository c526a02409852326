/**
 * The pure engine number: one thread, in process, for each file open -> process -> write.
 * Usage: node dist/bench/engine-loop.js <pixel-only|basic> IN OUT
 * Prints one JSON line {files, written, other, bytesIn, bytesOut, seconds, cpuSeconds}. Run it under
 * `node --cpu-prof` to profile the engine without the worker pool around it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Engine } from '../src/deid/deidentify';
import { DEFAULT_SETTINGS, DeidSettings } from '../src/deid/settings';
import { openInstance, writeOutputFile } from '../src/io/instance-file';
import { listFiles, now } from './util';

export const BENCH_SECRET = Buffer.from('deid-bench-secret-0123456789abcdef', 'utf8');

export function settingsFor(profile: string): DeidSettings {
  if (profile === 'basic') return { ...DEFAULT_SETTINGS, profile: 'basic' };
  if (profile === 'pixel-only') return DEFAULT_SETTINGS;
  throw new Error(`unknown profile ${profile}`);
}

export interface LoopResult {
  files: number;
  written: number;
  other: Record<string, number>;
  bytesIn: number;
  bytesOut: number;
  seconds: number;
  /** user + system CPU time of the loop. */
  cpuSeconds: number;
}

export function engineLoop(profile: string, inRoot: string, outRoot: string): LoopResult {
  const files = listFiles(inRoot);
  fs.mkdirSync(outRoot, { recursive: true });
  const engine = new Engine(settingsFor(profile), BENCH_SECRET);
  const r: LoopResult = { files: files.length, written: 0, other: {}, bytesIn: 0, bytesOut: 0, seconds: 0, cpuSeconds: 0 };
  const t0 = now();
  const cpu0 = process.cpuUsage();
  files.forEach((rel, i) => {
    const opened = openInstance(path.join(inRoot, rel));
    try {
      r.bytesIn += opened.size;
      const outcome = engine.process(opened.instance);
      if (outcome.kind === 'forward') {
        r.bytesOut += writeOutputFile(path.join(outRoot, `${i}.dcm`), outcome.output.meta, outcome.output.parts);
        r.written++;
      } else {
        const key = `${outcome.kind}:${outcome.code}`;
        r.other[key] = (r.other[key] ?? 0) + 1;
      }
    } finally {
      opened.close();
    }
  });
  r.seconds = now() - t0;
  const cpu = process.cpuUsage(cpu0);
  r.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return r;
}

if (require.main === module) {
  const [profile, inRoot, outRoot] = process.argv.slice(2);
  if (!profile || !inRoot || !outRoot) {
    process.stderr.write('usage: node dist/bench/engine-loop.js <pixel-only|basic> IN OUT\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(engineLoop(profile, inRoot, outRoot))}\n`);
}
