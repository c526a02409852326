/**
 * Replays the Dockerfile without Docker (test/deploy/container.test.ts): builds each stage the
 * runtime stage copies from into a host folder, assembles the runtime stage's files into a
 * "root" folder, and starts its ENTRYPOINT + CMD with its ENV and USER, the volumes mapped to
 * host folders, the way `docker run --read-only --tmpfs /tmp -v ...` would.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { all, copyArgs, Dockerfile, Stage, workdirAt } from './dockerfile';

export interface RunOutcome { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs a command asynchronously (never blocks the event loop), bounded in time. */
export function runAsync(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number; uid?: number; gid?: number }): Promise<RunOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], uid: opts.uid, gid: opts.gid, detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    const timer = setTimeout(() => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      reject(new Error(`${cmd} ${args.join(' ')} timed out after ${opts.timeoutMs} ms\n${stderr.slice(-4000)}`));
    }, opts.timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** A free TCP port on loopback (closed again before use: good enough for a test). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Host folder standing for the container path `p` of a stage or image rooted at `root`. */
export const hostPath = (root: string, p: string): string => path.join(root, p);

/**
 * Docker COPY of one source into `dest`: a folder's contents go into dest, a file goes to
 * dest/name when dest ends with "/" or several sources are copied, else to dest itself.
 * Symlinks are copied as they are (node_modules/.bin). `keep` filters context files
 * (.dockerignore), given the source-relative path.
 */
export function dockerCopy(src: string, dest: string, intoFolder: boolean, keep: (abs: string) => boolean = () => true): void {
  const st = fs.statSync(src);
  if (st.isDirectory()) {
    fs.mkdirSync(dest, { recursive: true });
    fs.cpSync(src, dest, { recursive: true, verbatimSymlinks: true, filter: (s) => keep(s) });
  } else {
    const target = intoFolder ? path.join(dest, path.basename(src)) : dest;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (keep(src)) fs.copyFileSync(src, target);
  }
}

export interface ReplayContext {
  dockerfile: Dockerfile;
  /** The build context (the repository). */
  contextDir: string;
  /** Is a context-relative path excluded by .dockerignore? */
  ignored: (rel: string) => boolean;
  /** Folder where stage roots are made. */
  workDir: string;
  /** Where the runtime stage's `npm ci` without --omit=dev (dev dependencies) is taken from. */
  devNodeModules: string;
  npmTimeoutMs: number;
  log: (msg: string) => void;
}

export function stageByName(df: Dockerfile, name: string): Stage {
  const s = df.stages.find((st) => st.name === name);
  if (!s) throw new Error(`Dockerfile: no stage named ${name}`);
  return s;
}

/** Applies a stage's COPY instructions (context or --from) to its host root, in order. */
async function applyCopies(ctx: ReplayContext, stage: Stage, root: string, stageRoots: Map<string, string>, runStep?: (cmd: string, cwd: string) => Promise<void>): Promise<void> {
  for (let i = 0; i < stage.instructions.length; i++) {
    const ins = stage.instructions[i];
    const wd = workdirAt(stage, i);
    if (ins.keyword === 'WORKDIR') fs.mkdirSync(hostPath(root, workdirAt(stage, i + 1)), { recursive: true });
    if (ins.keyword === 'COPY') {
      const { sources, dest } = copyArgs(ins);
      const destAbs = dest.startsWith('/') ? dest : path.posix.join(wd, dest);
      const intoFolder = dest.endsWith('/') || sources.length > 1;
      for (const s of sources) {
        if (ins.flags.from) {
          const fromRoot = stageRoots.get(ins.flags.from);
          if (!fromRoot) throw new Error(`COPY --from=${ins.flags.from} (line ${ins.line}): stage not replayed`);
          dockerCopy(hostPath(fromRoot, s), hostPath(root, destAbs), intoFolder);
        } else {
          const src = path.join(ctx.contextDir, s);
          if (!fs.existsSync(src)) throw new Error(`COPY ${s} (line ${ins.line}): not in the build context`);
          if (ctx.ignored(path.relative(ctx.contextDir, src))) throw new Error(`COPY ${s} (line ${ins.line}): excluded by .dockerignore`);
          dockerCopy(src, hostPath(root, destAbs), intoFolder, (abs) => !ctx.ignored(path.relative(ctx.contextDir, abs).split(path.sep).join('/')));
        }
      }
    }
    if (ins.keyword === 'RUN' && runStep) await runStep(ins.rest, hostPath(root, wd));
  }
}

/**
 * Builds a non-runtime stage into a host folder. Only npm steps are replayed:
 * `npm ci ... --omit=dev ...` and `npm run NAME` run for real; a full `npm ci` (dev dependencies
 * for the compiler) links the repository's node_modules, installed by the repository's own
 * `npm ci` from the same package-lock.json. Any other RUN throws: this test cannot replay it.
 */
export async function replayStage(ctx: ReplayContext, stage: Stage, stageRoots: Map<string, string>): Promise<string> {
  const root = path.join(ctx.workDir, `stage-${stage.name ?? 'unnamed'}`);
  fs.mkdirSync(root, { recursive: true });
  await applyCopies(ctx, stage, root, stageRoots, async (cmd, cwd) => {
    for (const step of cmd.split('&&').map((s) => s.trim())) {
      const w = step.split(/\s+/);
      if (w[0] !== 'npm') throw new Error(`RUN "${step}" in stage ${stage.name}: only npm steps can be replayed`);
      if (w[1] === 'ci' && !w.includes('--omit=dev')) {
        ctx.log(`stage ${stage.name}: ${step} -> the repository's node_modules (same package-lock.json)`);
        fs.symlinkSync(ctx.devNodeModules, path.join(cwd, 'node_modules'), 'dir');
        continue;
      }
      if ((w[1] === 'ci' && w.includes('--omit=dev') && w.includes('--ignore-scripts')) || w[1] === 'run') {
        ctx.log(`stage ${stage.name}: ${step}`);
        const started = Date.now();
        const r = await runAsync('sh', ['-c', step], { cwd, timeoutMs: ctx.npmTimeoutMs });
        if (r.code !== 0) throw new Error(`stage ${stage.name}: "${step}" failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
        ctx.log(`stage ${stage.name}: ${step} done in ${Date.now() - started} ms`);
        continue;
      }
      throw new Error(`RUN "${step}" in stage ${stage.name}: not an npm step this test replays`);
    }
  });
  return root;
}

/** Assembles the runtime (last) stage's files: its COPY instructions, from context and stages. */
export async function replayRuntimeFiles(ctx: ReplayContext): Promise<{ root: string; stageRoots: Map<string, string> }> {
  const runtime = ctx.dockerfile.stages[ctx.dockerfile.stages.length - 1];
  const stageRoots = new Map<string, string>();
  for (const ins of all(runtime, 'COPY')) {
    const from = ins.flags.from;
    if (from && !stageRoots.has(from)) stageRoots.set(from, await replayStage(ctx, stageByName(ctx.dockerfile, from), stageRoots));
  }
  const root = path.join(ctx.workDir, 'root');
  fs.mkdirSync(root, { recursive: true });
  // Runtime RUN steps set up the OS (apt, user, folders): checked statically, not run here.
  await applyCopies(ctx, runtime, root, stageRoots);
  return { root, stageRoots };
}

/** Every file and folder under `dir` with size, mode and mtime: to prove nothing was written. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p);
      out.set(path.relative(dir, p), `${st.size}:${(st.mode & 0o7777).toString(8)}:${st.mtimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** chmod -R a-w (read-only) or u+w (writable again, for clean-up). */
export function chmodTree(dir: string, writable: boolean): void {
  const apply = (p: string): void => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    fs.chmodSync(p, writable ? st.mode | 0o200 : st.mode & ~0o222);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) apply(path.join(p, e));
  };
  apply(dir);
}

export interface ImageProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM to the container's first process only (as `docker stop`). */
  terminate(): void;
  /** SIGKILL to the process and all its descendants (clean-up after a failure). */
  killAll(): void;
}

export function startImageProcess(argv: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; uid?: number; gid?: number }): ImageProcess {
  const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env, uid: opts.uid, gid: opts.gid, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => { out += c; });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { err += c; });
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => { done = true; resolve({ code, signal }); }));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    terminate: () => { child.kill('SIGTERM'); },
    killAll: () => {
      if (done) return;
      // An init (tini) puts its child in a process group of its own: kill the whole tree.
      for (const pid of [...descendants(child.pid!), child.pid!]) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    },
  };
}

/** Every descendant of a process, from /proc (Linux). */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  const visit = (p: number): void => {
    for (const [c, pp] of parent) if (pp === p) { out.push(c); visit(c); }
  };
  visit(pid);
  return out;
}

/** The process's exit, or 'timeout' after `ms` (the timer does not keep the test alive). */
export function exitWithin(p: ImageProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), ms); });
  return Promise.race([p.exited, timeout]).finally(() => clearTimeout(timer));
}

/** Until `pattern` appears on stderr (resolves its match), or the process exits / time runs out. */
export function waitForStderr(p: ImageProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${p.stderr()}`)); }, timeoutMs);
    const check = (): void => {
      const m = pattern.exec(p.stderr());
      if (m) { cleanup(); resolve(m); }
    };
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`exited with ${code} before ${pattern}:\n${p.stderr()}`)); };
    const cleanup = (): void => { clearTimeout(timer); p.child.stderr!.off('data', check); p.child.off('exit', onExit); };
    p.child.stderr!.on('data', check);
    p.child.once('exit', onExit);
    check();
  });
}

/** The camelCase config key as the loader's DEID__ override segment (acceptAnyCaller -> ACCEPT_ANY_CALLER). */
export function envSegment(key: string): string {
  const seg = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  // The loader maps a segment back with lower-case + `_x` -> `X`: it must give the key again.
  const back = seg.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  if (back !== key) throw new Error(`config key "${key}" cannot be set by a DEID__ environment override`);
  return seg;
}
