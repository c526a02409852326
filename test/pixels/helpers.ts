/** Shared test plumbing: paths, the Python reference runner, tool detection. */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '../../..'); // dist/test/pixels -> project root
export const SAMPLES = path.join(ROOT, 'test/fixtures/samples');
export const REFERENCE_PY = path.join(ROOT, 'test/pixels/reference.py');
export const PYTHON = '/usr/bin/python3'; // Debian's interpreter: the one with pydicom 2.3

export type RefName = 'pydicom' | 'dcmdjpeg' | 'dcmdjpls' | 'dcmdrle';

export interface RefJob {
  file: string;
  ref?: RefName;
  npy?: string;
  png?: { path: string; frame: number; offset: number };
  rescale?: boolean;
}

export interface RefResult {
  ok: boolean;
  error?: string;
  dtype?: string;
  shape?: number[];
  sha256?: string;
  npsave_sha256?: string;
  rescale_sha256?: string;
  npy_equal?: boolean;
  png_equal?: boolean;
  png_mode?: string;
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

let pyReason: string | null | undefined;
/** null when pydicom+numpy+Pillow are importable, else why not (used as the skip reason). */
export function pythonUnavailable(): string | null {
  if (pyReason !== undefined) return pyReason;
  if (!existsSync(PYTHON)) return (pyReason = `${PYTHON} not found`);
  const r = spawnSync(PYTHON, ['-c', 'import pydicom, numpy, PIL'], { encoding: 'utf8' });
  pyReason = r.status === 0 ? null : `${PYTHON} cannot import pydicom/numpy/PIL: ${r.stderr.trim().split('\n').pop()}`;
  return pyReason;
}

export function toolUnavailable(tool: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  return r.status === 0 ? null : `${tool} (DCMTK) not on PATH`;
}

/** One Python process for many jobs (interpreter start-up dominates otherwise). */
export function runReference(jobs: RefJob[]): RefResult[] {
  const r = spawnSync(PYTHON, [REFERENCE_PY], {
    input: JSON.stringify(jobs),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`reference.py failed (${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as RefResult[];
  if (out.length !== jobs.length) throw new Error('reference.py returned a wrong number of results');
  return out;
}

export function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
}

export function makeTmpDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
