/**
 * The container image, without Docker (Docker cannot run on these machines). Two halves:
 *
 * - Static checks of the Dockerfile: a Node LTS slim base that satisfies package.json
 *   `engines`, a multi-stage build whose runtime stage gets production dependencies only, a
 *   numeric non-root USER, an init process, a HEALTHCHECK on /healthz, VOLUMEs holding every
 *   path the container config writes, EXPOSE of the config's ports, a .dockerignore that keeps
 *   every copied file and leaves secrets and build output out.
 * - A replay of what the image build and `docker run --read-only --tmpfs /tmp -v ...` do: the
 *   stages the runtime stage copies from are built (the build stage's `npm run build` for real,
 *   the deps stage's `npm ci --omit=dev --ignore-scripts` for real, from the registry), the
 *   runtime stage's COPY instructions assemble the same files into a temporary root, which is
 *   then made read-only; the ENTRYPOINT + CMD start with the runtime ENV, as the USER's uid (when
 *   the test runs as root), in WORKDIR, the volumes mapped to temporary folders by DEID__
 *   overrides derived from the config itself. Checked: /healthz, the HEALTHCHECK command, C-ECHO
 *   and a C-STORE through to the research volume with DCMTK, the audit volume, a clean exit on
 *   SIGTERM, nothing written into the image's files; and that the same replay fails when a
 *   runtime dependency is missing, or when no pseudonymization secret is given.
 *
 * Set DEPLOY_TEST_NODE=/path/to/node to run the replayed image with another Node.js binary
 * (e.g. the image's major version); by default the test's own `node` runs it.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { hasTool, repoRoot } from '../support/tools';
import { all, argv, copyArgs, dockerignore, exposed, healthcheckArgv, last, parseDockerfile, stageEnv, volumes, workdirAt } from './dockerfile';
import { chmodTree, envSegment, exitWithin, freePort, hostPath, ImageProcess, replayRuntimeFiles, runAsync, snapshot, startImageProcess, waitForStderr } from './replay';

const REPO = repoRoot();
const df = parseDockerfile(fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'));
const runtime = df.stages[df.stages.length - 1];
const ignoredByContext = dockerignore(fs.readFileSync(path.join(REPO, '.dockerignore'), 'utf8'));
const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { engines?: { node?: string }; dependencies: Record<string, string>; devDependencies: Record<string, string> };

const entry = argv(last(runtime, 'ENTRYPOINT'));
const cmd = argv(last(runtime, 'CMD'));
const imageArgv = [...entry, ...cmd];
const INITS = ['tini', 'dumb-init'];
const runtimeWorkdir = workdirAt(runtime);
const vols = volumes(runtime);

/** The config file named by `--config` in ENTRYPOINT + CMD (a container path), and its YAML. */
const configPath = imageArgv[imageArgv.indexOf('--config') + 1];
const configInContext = (): string => {
  // Found through the COPY that puts it into the image (COPY config ./config).
  for (const ins of all(runtime, 'COPY').filter((i) => !i.flags.from)) {
    const { sources, dest } = copyArgs(ins);
    const destAbs = dest.startsWith('/') ? dest : path.posix.join(workdirAt(runtime, runtime.instructions.indexOf(ins)), dest);
    for (const s of sources) {
      const st = fs.statSync(path.join(REPO, s));
      if (st.isDirectory() && configPath.startsWith(`${destAbs.replace(/\/$/, '')}/`)) return path.join(REPO, s, configPath.slice(destAbs.replace(/\/$/, '').length + 1));
      if (!st.isDirectory() && configPath === destAbs) return path.join(REPO, s);
    }
  }
  throw new Error(`${configPath} is not copied into the image`);
};
const config = parse(fs.readFileSync(configInContext(), 'utf8')) as {
  dimse: { host: string; port: number }; api: { host: string; port: number };
  spool: { dir: string }; audit: { file: string }; destinations: Record<string, { type: string; path?: string }>;
  pseudonyms?: { secretFile?: string };
};

const under = (p: string, dir: string): boolean => p === dir || p.startsWith(`${dir.replace(/\/$/, '')}/`);

/** `>=20.10 <21 || >=22` style ranges: enough of semver for package.json engines. */
function satisfies(version: string, range: string): boolean {
  const v = version.split('.').map(Number);
  const cmp = (a: number[], b: number[]): number => {
    for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
    return 0;
  };
  return range.split('||').some((alt) => alt.trim().split(/\s+/).every((c) => {
    const m = /^(>=|<=|>|<|=)?v?(\d+(?:\.\d+){0,2})$/.exec(c);
    if (!m) throw new Error(`engines: cannot read "${c}"`);
    const d = cmp(v, m[2].split('.').map(Number));
    return { '>=': d >= 0, '<=': d <= 0, '>': d > 0, '<': d < 0, '=': d === 0 }[m[1] ?? '=']!;
  }));
}

describe('Dockerfile (static)', () => {
  test('every stage is FROM one Node.js LTS slim image that satisfies package.json engines', () => {
    const images = new Set(df.stages.map((s) => s.image));
    assert.equal(images.size, 1, `stages use different images: ${[...images].join(', ')}`);
    const image = [...images][0];
    const m = /^node:(\d+)(?:\.\d+){0,2}-([a-z]+)-slim(?:@sha256:[0-9a-f]{64})?$/.exec(image);
    assert.ok(m, `${image}: expected node:<major>-<debian>-slim`);
    const major = Number(m[1]);
    assert.equal(major % 2, 0, `${image}: Node.js LTS lines are the even majors`);
    assert.ok(major >= 22, `${image}: Node.js ${major} is out of support`);
    assert.ok(pkg.engines?.node, 'package.json has engines.node');
    assert.ok(satisfies(`${major}.99.0`, pkg.engines.node), `Node.js ${major} is outside package.json engines ${pkg.engines.node}`);
    assert.ok(df.stages.length >= 2, 'a multi-stage build');
  });

  test('the runtime stage gets production dependencies only, compiled output only, no sources or tests', () => {
    const copies = all(runtime, 'COPY').map((i) => ({ from: i.flags.from, ...copyArgs(i) }));
    for (const c of copies.filter((x) => !x.from)) {
      for (const s of c.sources) assert.ok(!['.', './', 'src', 'test', 'node_modules', 'dist'].includes(s.replace(/\/$/, '')), `runtime COPY ${s} from the context`);
    }
    const nm = copies.find((c) => c.sources.some((s) => s.endsWith('/node_modules')));
    assert.ok(nm?.from, 'node_modules come from a stage');
    const depsRun = all(df.stages.find((s) => s.name === nm.from)!, 'RUN').map((r) => r.rest).join(' && ');
    assert.match(depsRun, /npm ci\b[^&]*--omit=dev/, 'the dependency stage installs with --omit=dev');
    assert.match(depsRun, /npm ci\b[^&]*--ignore-scripts/, 'and --ignore-scripts (prepare needs tsc, a dev dependency)');
    assert.doesNotMatch(all(runtime, 'RUN').map((r) => r.rest).join('\n'), /npm (ci|install)/, 'no install in the runtime stage');
    const dist = copies.find((c) => c.sources.some((s) => /\/dist\/src\/?$/.test(s)));
    assert.ok(dist?.from, 'dist/src comes from a stage');
    assert.match(all(df.stages.find((s) => s.name === dist.from)!, 'RUN').map((r) => r.rest).join('\n'), /npm run build/);
    assert.equal(stageEnv(runtime).NODE_ENV, 'production');
  });

  test('a numeric non-root USER, owning the volume folders; an init process as ENTRYPOINT', () => {
    const user = last(runtime, 'USER')?.rest;
    assert.ok(user, 'USER is set');
    const m = /^(\d+):(\d+)$/.exec(user);
    assert.ok(m, `USER ${user}: numeric uid:gid (so that runAsNonRoot can verify it)`);
    assert.notEqual(Number(m[1]), 0);
    assert.notEqual(Number(m[2]), 0);
    const runs = all(runtime, 'RUN').map((r) => r.rest).join('\n');
    for (const v of vols) assert.ok(runs.includes(v), `${v} is created in the image (a new volume takes its owner)`);
    assert.match(runs, new RegExp(`chown -R ${m[1]}:${m[2]} `), 'the volume folders belong to the USER');
    const init = path.posix.basename(entry[0] ?? '');
    assert.ok(INITS.includes(init), `ENTRYPOINT starts with an init (${INITS.join(' or ')}), not ${entry[0]}`);
    assert.match(runs, new RegExp(`apt-get install[^\\n]*\\b${init}\\b`), `${init} is installed in the runtime stage`);
    assert.equal(last(runtime, 'STOPSIGNAL')?.rest ?? 'SIGTERM', 'SIGTERM');
  });

  test('HEALTHCHECK asks /healthz on the API port', () => {
    const hc = last(runtime, 'HEALTHCHECK');
    assert.ok(hc, 'HEALTHCHECK is set');
    const line = healthcheckArgv(hc).join(' ');
    assert.match(line, /\/healthz/);
    assert.ok(line.includes(String(config.api.port)), `HEALTHCHECK uses port ${config.api.port}`);
  });

  test('VOLUMEs hold everything the container config writes; EXPOSE has its ports; it listens on all interfaces', () => {
    for (const v of ['/var/lib/deid-gateway/spool', '/var/lib/deid-gateway/research', '/var/log/deid-gateway']) assert.ok(vols.includes(v), `VOLUME ${v}`);
    const written = [config.spool.dir, path.posix.join(config.spool.dir, 'quarantine'), path.posix.dirname(config.audit.file),
      ...Object.values(config.destinations).filter((d) => d.type === 'folder').map((d) => d.path!)];
    for (const p of written) {
      assert.ok(path.posix.isAbsolute(p), `${p} is absolute (the working directory is read-only)`);
      assert.ok(vols.some((v) => under(p, v)), `${p} is on a VOLUME, not on the read-only root`);
    }
    assert.equal(config.pseudonyms?.secretFile, undefined, 'no secret file by default: DEID_SECRET or DEID__PSEUDONYMS__SECRET_FILE');
    const ports = exposed(runtime);
    assert.ok(ports.includes(11112) && ports.includes(8080), `EXPOSE ${ports.join(' ')}`);
    assert.ok(ports.includes(config.dimse.port) && ports.includes(config.api.port));
    assert.equal(config.dimse.host, '0.0.0.0');
    assert.equal(config.api.host, '0.0.0.0');
  });

  test('.dockerignore keeps every file the Dockerfile copies from the context and drops the rest', () => {
    for (const stage of df.stages) {
      for (const ins of all(stage, 'COPY').filter((i) => !i.flags.from)) {
        for (const s of copyArgs(ins).sources) {
          const abs = path.join(REPO, s);
          assert.ok(fs.existsSync(abs), `COPY ${s}: in the repository`);
          const files = fs.statSync(abs).isDirectory() ? (fs.readdirSync(abs, { recursive: true }) as string[]).map((f) => path.posix.join(s, f.split(path.sep).join('/'))) : [s];
          for (const f of files.filter((f) => fs.statSync(path.join(REPO, f)).isFile())) assert.ok(!ignoredByContext(f), `${f} is copied but excluded by .dockerignore`);
        }
      }
    }
    for (const p of ['.deid-secret', 'config/.deid-secret', 'node_modules/yaml/package.json', 'dist/src/cli/main.js', '.git/HEAD', 'var/spool/x.dcm', 'var/audit/audit.jsonl', 'test/fixtures/samples/pydicom__CT_small.dcm', 'out/x', 'config/tls.key']) {
      assert.ok(ignoredByContext(p), `${p} must not be in the build context`);
    }
  });
});

const hasDcmtk = hasTool('echoscu') && hasTool('storescu');
const NODE = process.env.DEPLOY_TEST_NODE || process.execPath;
const AS_ROOT = process.getuid?.() === 0;
const [uid, gid] = (last(runtime, 'USER')?.rest ?? '').split(':').map(Number);

describe('the image replayed without Docker', { timeout: 600_000 }, () => {
  let work = '';
  let root = '';
  let appDir = '';
  let baseline = new Map<string, string>();
  const logs: string[] = [];

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-image-'));
    fs.chmodSync(work, 0o755); // the USER must be able to reach its volumes and /app
    const replay = await replayRuntimeFiles({
      dockerfile: df, contextDir: REPO, ignored: ignoredByContext, workDir: work,
      devNodeModules: path.join(REPO, 'node_modules'), npmTimeoutMs: 180_000,
      log: (m) => logs.push(m),
    });
    root = replay.root;
    appDir = hostPath(root, runtimeWorkdir);
    chmodTree(root, false); // the read-only root file system
    baseline = snapshot(root);
  }, { timeout: 420_000 });

  after(() => {
    if (!work) return;
    if (process.env.DEPLOY_TEST_KEEP) return;
    chmodTree(work, true);
    fs.rmSync(work, { recursive: true, force: true });
  });

  interface Started { p: ImageProcess; env: NodeJS.ProcessEnv; dimsePort: number; apiPort: number; volumeDirs: Map<string, string> }

  /**
   * `docker run --read-only --tmpfs /tmp -v ... -e ...`: fresh volume folders, the runtime ENV,
   * DEID__ overrides that point every config path on a VOLUME to its host folder, free ports on
   * loopback (the test binds no other interface), the USER's uid when running as root.
   */
  async function run(name: string, extraEnv: Record<string, string | undefined>): Promise<Started> {
    const runDir = path.join(work, `run-${name}`);
    fs.mkdirSync(runDir, { mode: 0o755 });
    const volumeDirs = new Map(vols.map((v, i) => [v, path.join(runDir, `volume-${i}`)]));
    const tmp = path.join(runDir, 'tmpfs');
    for (const d of [...volumeDirs.values(), tmp]) {
      fs.mkdirSync(d, { mode: 0o750 });
      if (AS_ROOT) fs.chownSync(d, uid, gid);
    }
    const remap = (p: string): string | undefined => {
      const v = vols.find((x) => under(p, x));
      return v && path.join(volumeDirs.get(v)!, p.slice(v.length));
    };
    const overrides: Record<string, string> = {};
    const walk = (node: unknown, keys: string[]): void => {
      if (typeof node === 'string' && path.posix.isAbsolute(node)) {
        const host = remap(node);
        if (host) overrides[`DEID__${keys.map(envSegment).join('__')}`] = host;
      } else if (node && typeof node === 'object' && !Array.isArray(node)) {
        for (const [k, v] of Object.entries(node)) walk(v, [...keys, k]);
      }
    };
    walk(config, []);
    const dimsePort = await freePort();
    const apiPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      PATH: `${path.dirname(NODE)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      HOME: '/nonexistent',
      TMPDIR: tmp,
      ...stageEnv(runtime),
      ...overrides,
      DEID__DIMSE__HOST: '127.0.0.1',
      DEID__API__HOST: '127.0.0.1',
      DEID__DIMSE__PORT: String(dimsePort),
      DEID__API__PORT: String(apiPort),
      DEID_SECRET: 'container-test-secret-0123456789abcdef',
    };
    for (const [k, v] of Object.entries(extraEnv)) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const p = startImageProcess(commandLine(), { cwd: appDir, env, ...(AS_ROOT ? { uid, gid } : {}) });
    return { p, env, dimsePort, apiPort, volumeDirs };
  }

  /** ENTRYPOINT + CMD on this host: container paths into the replayed root, `node` = NODE. */
  function commandLine(): string[] {
    let args = [...imageArgv];
    if (INITS.includes(path.posix.basename(args[0])) && !fs.existsSync(args[0])) {
      // No init on this host (apt-get install tini): run what it would run, and say so.
      const sep = args.indexOf('--');
      args = args.slice(sep >= 0 ? sep + 1 : 1);
      logs.push(`${imageArgv[0]} is not installed here: started without the init process`);
    }
    return args.map((a, i) => {
      if (i === 0 && a === 'node') return NODE;
      if (a.startsWith('/') && fs.existsSync(hostPath(root, a))) return hostPath(root, a);
      return a;
    });
  }

  const LISTENING = /deid-gateway listening: DIMSE \S+@[^:]+:(\d+), API http:\/\/[^:]+:(\d+)/;

  function get(port: number, p: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: p, timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }).on('error', reject).on('timeout', function (this: http.ClientRequest) { this.destroy(new Error('timeout')); });
    });
  }

  /** The image's HEALTHCHECK command, with the container's environment and user. */
  function healthcheck(env: NodeJS.ProcessEnv): Promise<number | null> {
    const hc = healthcheckArgv(last(runtime, 'HEALTHCHECK')!).map((a, i) => (i === 0 && a === 'node' ? NODE : a));
    return runAsync(hc[0], hc.slice(1), { env, cwd: appDir, timeoutMs: 15_000, ...(AS_ROOT ? { uid, gid } : {}) }).then((r) => r.code);
  }

  const dcmtk = (tool: string, args: string[]) => runAsync(tool, args, { env: { ...process.env, TCP_NODELAY: '1' }, timeoutMs: 60_000 });

  async function expectStartFailure(s: Started, why: RegExp): Promise<string> {
    const res = await exitWithin(s.p, 30_000);
    if (res === 'timeout') {
      s.p.killAll();
      assert.fail(`still running after 30 s:\n${s.p.stderr()}`);
    }
    assert.notEqual(res.code, 0, s.p.stderr());
    assert.doesNotMatch(s.p.stderr(), LISTENING);
    assert.match(s.p.stderr(), why);
    return s.p.stderr();
  }

  test('the production install has every dependency and no dev dependency', () => {
    for (const d of Object.keys(pkg.dependencies)) assert.ok(fs.existsSync(path.join(appDir, 'node_modules', d, 'package.json')), `${d} installed`);
    for (const d of Object.keys(pkg.devDependencies)) assert.ok(!fs.existsSync(path.join(appDir, 'node_modules', d)), `dev dependency ${d} not installed`);
    assert.ok(!fs.existsSync(path.join(appDir, 'src')) && !fs.existsSync(path.join(appDir, 'test')) && !fs.existsSync(path.join(appDir, 'dist', 'test')));
    assert.ok(fs.existsSync(path.join(appDir, 'dist/src/cli/main.js')));
  });

  test('starts read-only as the image user: /healthz, HEALTHCHECK, C-ECHO, C-STORE to the research volume, audit volume, clean SIGTERM', { skip: hasDcmtk ? false : 'DCMTK not installed (scripts/install-test-deps.sh)' }, async (t) => {
    const s = await run('main', {});
    try {
      const m = await waitForStderr(s.p, LISTENING, 30_000);
      assert.equal(Number(m[1]), s.dimsePort);
      assert.equal(Number(m[2]), s.apiPort);

      const h = await get(s.apiPort, '/healthz');
      assert.equal(h.status, 200, h.body);
      assert.deepEqual(JSON.parse(h.body), { status: 'ok' });
      assert.equal(await healthcheck(s.env), 0, 'the HEALTHCHECK command passes');

      const echo = await dcmtk('echoscu', ['-aec', 'DEIDGW', '127.0.0.1', String(s.dimsePort)]);
      assert.equal(echo.code, 0, `echoscu:\n${echo.stdout}${echo.stderr}\n${s.p.stderr()}`);

      // A C-STORE exercises the de-identification worker threads and the volumes.
      const sample = path.join(REPO, 'test/fixtures/samples/pydicom__CT_small.dcm');
      const store = await dcmtk('storescu', ['-aec', 'DEIDGW', '127.0.0.1', String(s.dimsePort), sample]);
      assert.equal(store.code, 0, `storescu:\n${store.stdout}${store.stderr}\n${s.p.stderr()}`);
      const research = s.volumeDirs.get('/var/lib/deid-gateway/research')!;
      const deadline = Date.now() + 30_000;
      const outputs = (): string[] => (fs.readdirSync(research, { recursive: true }) as string[]).filter((f) => f.endsWith('.dcm'));
      while (outputs().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      assert.equal(outputs().length, 1, `one de-identified instance in the research volume\n${s.p.stdout()}\n${s.p.stderr()}`);

      s.p.terminate();
      const exit = await exitWithin(s.p, 30_000);
      assert.notEqual(exit, 'timeout', `no exit 30 s after SIGTERM:\n${s.p.stderr()}`);
      assert.deepEqual(exit, { code: 0, signal: null }, s.p.stderr());
      assert.notEqual(await healthcheck(s.env), 0, 'the HEALTHCHECK fails once the gateway is gone');

      const auditFile = path.join(s.volumeDirs.get('/var/log/deid-gateway')!, path.posix.basename(config.audit.file));
      const events = fs.readFileSync(auditFile, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);
      for (const e of ['gateway.start', 'association.accepted', 'instance.received', 'gateway.stop']) assert.ok(events.includes(e), `audit volume has ${e}: ${events.join(', ')}`);
      assert.match(s.p.stdout(), /"gateway\.start"/, 'the audit log is copied to stdout for the container log');
      if (AS_ROOT) {
        for (const f of [auditFile, ...outputs().map((o) => path.join(research, o))]) assert.equal(fs.statSync(f).uid, uid, `${f} written by uid ${uid}`);
      }
      assert.deepEqual(snapshot(root), baseline, 'nothing written into the image\'s files');
      for (const l of logs) t.diagnostic(l);
    } finally {
      s.p.killAll();
    }
  });

  test('the documented caller allow-list override: DEID__DIMSE__ACCEPT_ANY_CALLER=false + DEID__DIMSE__CALLERS', { skip: hasDcmtk ? false : 'DCMTK not installed' }, async () => {
    const s = await run('callers', { DEID__DIMSE__ACCEPT_ANY_CALLER: 'false', DEID__DIMSE__CALLERS: '[{aeTitle: PACS_ROUTER, hosts: [127.0.0.1]}]' });
    try {
      await waitForStderr(s.p, LISTENING, 30_000);
      assert.equal((await dcmtk('echoscu', ['-aet', 'PACS_ROUTER', '-aec', 'DEIDGW', '127.0.0.1', String(s.dimsePort)])).code, 0);
      assert.notEqual((await dcmtk('echoscu', ['-aet', 'INTRUDER', '-aec', 'DEIDGW', '127.0.0.1', String(s.dimsePort)])).code, 0);
      s.p.terminate();
      assert.deepEqual(await exitWithin(s.p, 30_000), { code: 0, signal: null }, s.p.stderr());
    } finally {
      s.p.killAll();
    }
  });

  test('the secret from a mounted file (DEID__PSEUDONYMS__SECRET_FILE) instead of DEID_SECRET', async () => {
    const secrets = path.join(work, 'run-secrets');
    fs.mkdirSync(secrets, { mode: 0o755 });
    const file = path.join(secrets, 'deid-secret');
    fs.writeFileSync(file, 'mounted-secret-0123456789abcdef\n', { mode: 0o400 });
    if (AS_ROOT) fs.chownSync(file, uid, gid);
    const s = await run('secret-file', { DEID_SECRET: undefined, DEID__PSEUDONYMS__SECRET_FILE: file });
    try {
      await waitForStderr(s.p, LISTENING, 30_000);
      // An answer also proves the start-up code ran to its end (signal handlers installed).
      assert.equal((await get(s.apiPort, '/healthz')).status, 200);
      s.p.terminate();
      assert.deepEqual(await exitWithin(s.p, 30_000), { code: 0, signal: null }, s.p.stderr());
    } finally {
      s.p.killAll();
    }
    assert.equal(fs.readFileSync(file, 'utf8'), 'mounted-secret-0123456789abcdef\n');
  });

  test('no secret at all: the start fails, nothing is created in the read-only app folder', async () => {
    const s = await run('no-secret', { DEID_SECRET: undefined });
    await expectStartFailure(s, /secret/i);
    const absent = await run('absent-secret-file', { DEID_SECRET: undefined, DEID__PSEUDONYMS__SECRET_FILE: path.join(work, 'no-such-mount', 'deid-secret') });
    await expectStartFailure(absent, /secret/i);
    assert.deepEqual(snapshot(root), baseline);
  });

  test('a missing runtime dependency fails the start (the replay can fail)', async () => {
    const modules = path.join(appDir, 'node_modules');
    const aside = path.join(work, 'dcmjs-dimse.aside');
    fs.chmodSync(modules, 0o755);
    fs.renameSync(path.join(modules, 'dcmjs-dimse'), aside);
    try {
      const s = await run('missing-dependency', {});
      await expectStartFailure(s, /Cannot find module 'dcmjs-dimse'/);
    } finally {
      fs.renameSync(aside, path.join(modules, 'dcmjs-dimse'));
      fs.chmodSync(modules, 0o555);
    }
  });
});
