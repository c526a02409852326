/**
 * DCMTK as a network test peer: storescp (a C-STORE SCP writing what it receives to a folder)
 * and storescu (a C-STORE SCU). Both run with TCP_NODELAY=1 (Debian's DCMTK leaves Nagle on
 * otherwise) and talk over loopback only.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './orthanc';

export { freePort };

const ENV = (): NodeJS.ProcessEnv => ({ ...process.env, TCP_NODELAY: '1' });

export interface StorescpOptions {
  aet?: string;
  /**
   * Presentation contexts to accept, as [abstract syntax UID, transfer syntax UIDs]; default:
   * every storage SOP class with every transfer syntax DCMTK knows (`+xa`).
   */
  accept?: Array<[string, string[]]>;
  /** Write exactly the received bytes (`+B`, default true). */
  bitPreserving?: boolean;
  extraArgs?: string[];
}

export interface Storescp {
  port: number;
  aet: string;
  dir: string;
  pid: number;
  /** Received files (full paths), in name order. */
  files(): string[];
  stop(): Promise<void>;
  log(): string;
}

/** Starts DCMTK storescp on 127.0.0.1-reachable `port` (free one by default), writing into `dir`. */
export async function startStorescp(dir: string, port?: number, opts: StorescpOptions = {}): Promise<Storescp> {
  fs.mkdirSync(dir, { recursive: true });
  const p = port ?? (await freePort());
  const aet = opts.aet ?? 'STORESCP';
  const args = ['-aet', aet, '-od', dir, '-dhl', '--single-process'];
  if (opts.bitPreserving !== false) args.push('+B');
  let cfgDir: string | undefined;
  if (opts.accept) {
    cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-storescp-cfg-'));
    const cfg = path.join(cfgDir, 'storescp.cfg');
    fs.writeFileSync(cfg, storescpConfig(opts.accept));
    args.push('-xf', cfg, 'Test');
  } else {
    args.push('+xa');
  }
  args.push(...(opts.extraArgs ?? []), String(p));
  let out = '';
  const child: ChildProcess = spawn('storescp', args, { stdio: ['ignore', 'pipe', 'pipe'], env: ENV() });
  child.stdout?.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let early: Error | undefined;
  child.once('exit', (code) => { early ??= new Error(`storescp exited with ${code}: ${out}`); });
  child.once('error', (err) => { early = err; });
  try {
    await waitForPort(p, 10_000, () => early);
  } catch (err) {
    child.kill('SIGKILL');
    if (cfgDir) fs.rmSync(cfgDir, { recursive: true, force: true });
    throw err;
  }
  return {
    port: p,
    aet,
    dir,
    pid: child.pid ?? -1,
    files: () => fs.readdirSync(dir).filter((f) => !f.startsWith('.')).sort().map((f) => path.join(dir, f)),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      if (cfgDir) fs.rmSync(cfgDir, { recursive: true, force: true });
    },
    log: () => out,
  };
}

/** A storescp/storescu association configuration file with one profile named "Test". */
function storescpConfig(accept: Array<[string, string[]]>): string {
  const lines = ['[[TransferSyntaxes]]'];
  accept.forEach(([, ts], i) => {
    lines.push(`[TS${i + 1}]`);
    ts.forEach((t, j) => lines.push(`TransferSyntax${j + 1} = ${t}`));
  });
  lines.push('[[PresentationContexts]]', '[Contexts]');
  lines.push(`PresentationContext1 = 1.2.840.10008.1.1\\TSV`);
  accept.forEach(([sop], i) => lines.push(`PresentationContext${i + 2} = ${sop}\\TS${i + 1}`));
  lines.splice(1, 0, '[TSV]', 'TransferSyntax1 = 1.2.840.10008.1.2');
  lines.push('[[Profiles]]', '[Test]', 'PresentationContexts = Contexts');
  return `${lines.join('\n')}\n`;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
async function waitForPort(port: number, timeoutMs: number, failed: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const err = failed();
    if (err) throw err;
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface StorescuResult {
  status: number | null;
  output: string;
}

/**
 * Sends `files` with DCMTK storescu in one association, proposing for each file its own SOP
 * class and transfer syntax (read with dcmdump), so compressed files go as they are.
 */
export function storescu(files: string[], host: string, port: number, calledAE: string, callingAE = 'STORESCU', timeoutMs = 60_000): StorescuResult {
  const pairs = new Map<string, Set<string>>();
  for (const f of files) {
    const r = spawnSync('dcmdump', ['-q', '-Un', '+P', '0002,0002', '+P', '0002,0010', f], { encoding: 'latin1' });
    const uids = [...r.stdout.matchAll(/\[([0-9.]+)\]/g)].map((m) => m[1]);
    if (uids.length < 2) throw new Error(`storescu: cannot read SOP class / transfer syntax of ${f}: ${r.stderr}`);
    if (!pairs.has(uids[0])) pairs.set(uids[0], new Set());
    pairs.get(uids[0])!.add(uids[1]);
  }
  const lines = ['[[TransferSyntaxes]]'];
  const contexts: string[] = [];
  let n = 0;
  for (const [sop, tss] of pairs) {
    for (const ts of tss) {
      n++;
      lines.push(`[TS${n}]`, `TransferSyntax1 = ${ts}`);
      contexts.push(`PresentationContext${n} = ${sop}\\TS${n}`);
    }
  }
  lines.push('[[PresentationContexts]]', '[Contexts]', ...contexts, '[[Profiles]]', '[Test]', 'PresentationContexts = Contexts');
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-storescu-cfg-'));
  const cfg = path.join(cfgDir, 'storescu.cfg');
  fs.writeFileSync(cfg, `${lines.join('\n')}\n`);
  try {
    const r = spawnSync('storescu', ['-aet', callingAE, '-aec', calledAE, '-xf', cfg, 'Test', '-nh', host, String(port), ...files], {
      encoding: 'latin1', env: ENV(), timeout: timeoutMs,
    });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(cfgDir, { recursive: true, force: true });
  }
}
