/**
 * Helpers to run real, independent DICOM tools (DCMTK, dicom3tools, pydicom) from tests.
 * Install them with scripts/install-test-deps.sh.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Debian's interpreter, which has python3-pydicom / numpy / PIL (a venv python may not). */
export const pydicomPython = '/usr/bin/python3';

/** Folder holding package.json, found from __dirname (works from test/ and from dist/test/). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`repoRoot: no package.json above ${__dirname}`);
    dir = up;
  }
}

/** Is an executable of that name on PATH (or is `name` an executable path)? */
export function hasTool(name: string): boolean {
  const candidates = name.includes('/') ? [name]
    : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, name));
  return candidates.some((p) => {
    try { fs.accessSync(p, fs.constants.X_OK); return fs.statSync(p).isFile(); } catch { return false; }
  });
}

export interface RunResult { status: number | null; signal: string | null; stdout: string; stderr: string }

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  /** Output decoding; default latin1, so that no byte is lost. */
  encoding?: BufferEncoding;
  env?: NodeJS.ProcessEnv;
}

/** Run a command without a shell. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(cmd, args, {
    input: opts.input, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 512 * 1024 * 1024,
    encoding: opts.encoding ?? 'latin1', env: opts.env ?? process.env,
  });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${cmd} not found: run scripts/install-test-deps.sh`);
    }
    throw r.error;
  }
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/**
 * DCMTK dcmdump; returns stdout, throws (with stderr) when dcmdump fails or reports an error
 * ("E: ..." lines). Pass e.g. ['+P', 'PatientName'] or ['-q'] in `args`.
 */
export function dcmdump(file: string, args: string[] = []): string {
  const r = run('dcmdump', [...args, file]);
  if (r.status !== 0 || /^E: /m.test(r.stderr)) {
    throw new Error(`dcmdump ${file} failed (status ${r.status}):\n${r.stderr}${r.stdout.slice(0, 2000)}`);
  }
  return r.stdout;
}

export interface DciodvfyResult {
  /** IOD name as dciodvfy reports it (e.g. "MRImage"), null when not recognised. */
  iod: string | null;
  errors: string[];
  warnings: string[];
  /** dciodvfy crashed / stopped early (it does on some damaged files). */
  aborted: boolean;
  output: string;
}

/** dicom3tools dciodvfy: IOD conformance check. Never throws for non-conformance. */
export function dciodvfy(file: string): DciodvfyResult {
  const r = run('dciodvfy', [file]);
  const output = r.stdout + r.stderr;
  const lines = output.split('\n').map((l) => l.trimEnd());
  const errors = lines.filter((l) => l.startsWith('Error - ')).map((l) => l.slice(8));
  const warnings = lines.filter((l) => l.startsWith('Warning - ')).map((l) => l.slice(10));
  // dciodvfy prints the IOD it selected on a line of its own before the module checks.
  const iodLine = lines.find((l) => /^[A-Za-z0-9]+$/.test(l) && !/^(Error|Warning)/.test(l));
  const aborted = r.signal !== null || r.status === null || r.status > 1
    || errors.some((e) => /read failed|premature|abort|out of order/i.test(e));
  return { iod: iodLine ?? null, errors, warnings, aborted, output };
}

/** Run a Python snippet with Debian's python3 (pydicom available); UTF-8 stdout; throws on non-zero exit. */
export function python(code: string, args: string[] = [], input?: string): string {
  const r = run(pydicomPython, ['-c', code, ...args], {
    input, encoding: 'utf8', env: { ...process.env, PYTHONIOENCODING: 'utf-8' },
  });
  if (r.status !== 0) throw new Error(`python failed (status ${r.status}):\n${r.stderr}`);
  return r.stdout;
}

/** Create a temporary folder, run fn in it, remove it afterwards (also on failure). */
export async function withTempDir<T>(fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-test-'));
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
