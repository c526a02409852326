import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { stringify } from 'yaml';
import { GATEWAY_NODE_FLAGS, missingNodeFlags } from '../../src/cli/node-flags';
import { argv, last, parseDockerfile } from '../deploy/dockerfile';
import { testConfig } from '../support/gateway-process';
import { repoRoot } from '../support/tools';

const REPO = repoRoot();
const MAIN = path.join(REPO, 'dist/src/cli/main.js');
const WARNING = /warning: node was started without --initial-old-space-size=128/;

/** The words between `node` and the entry script in a command line. */
function flagsBefore(words: string[], script: RegExp): string[] {
  const node = words.findIndex((w) => w === 'node' || w.endsWith('/node'));
  const entry = words.findIndex((w) => script.test(w));
  assert.ok(node >= 0 && entry > node, `node ... script in: ${words.join(' ')}`);
  return words.slice(node + 1, entry);
}

/**
 * Full (major) garbage collections in a fresh process started with GATEWAY_NODE_FLAGS, while the
 * main thread and then a worker thread each promote and drop about 100 MB of objects; with
 * `confine`, confineHeapFloorToMainThread() runs first. V8's memory reducer is off: it adds full
 * collections of its own when a thread goes idle under load, whatever the floor.
 */
function majorCollections(confine: boolean): { worker: number; main: number } {
  const script = `
    const { Worker } = require('node:worker_threads');
    const churn = () => {
      const { PerformanceObserver, constants } = require('node:perf_hooks');
      let majors = 0;
      const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++; });
      obs.observe({ entryTypes: ['gc'] });
      let live = [];
      for (let i = 0; i < 5e6; i++) { live.push({ a: i, b: [i, i + 1] }); if (live.length > 50000) live = live.slice(25000); }
      return new Promise((resolve) => setTimeout(() => { obs.disconnect(); resolve(majors); }, 50));
    };
    if (${confine}) require(${JSON.stringify(path.join(REPO, 'dist/src/cli/node-flags.js'))}).confineHeapFloorToMainThread();
    churn().then((main) => {
      const w = new Worker('(' + churn + ')().then((n) => require("node:worker_threads").parentPort.postMessage(n))', { eval: true });
      w.once('message', (worker) => console.log(JSON.stringify({ worker, main })));
    });
  `;
  const r = spawnSync(process.execPath, [...GATEWAY_NODE_FLAGS, '--no-memory-reducer', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { worker: number; main: number };
}

/** `serve` on loopback with OS-chosen ports until its "listening" line; then SIGTERM. Its stderr. */
async function serveOnce(command: string, args: string[]): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-flags-'));
  try {
    const file = path.join(dir, 'gateway.yaml');
    fs.writeFileSync(file, stringify(testConfig(dir, { research: { type: 'folder', path: path.join(dir, 'research') } })));
    const child = spawn(command, [...args, 'serve', '--config', file], {
      cwd: dir,
      env: { ...process.env, DEID_SECRET: 'integration-test-secret-0123456789', DEID_API_TOKEN: 'test-token-123456' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => { err += c; });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let timer: NodeJS.Timeout | undefined;
    const started = await Promise.race([
      new Promise<boolean>((resolve) => child.stderr.on('data', () => { if (/deid-gateway listening/.test(err)) resolve(true); })),
      exited.then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), 30_000); }),
    ]);
    clearTimeout(timer);
    child.kill('SIGTERM');
    await exited;
    assert.ok(started, `the gateway did not start:\n${err}`);
    return err;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('the gateway process starts with GATEWAY_NODE_FLAGS', () => {
  test('missingNodeFlags compares flags by name, any value and either spelling', () => {
    assert.deepEqual(missingNodeFlags([]), [...GATEWAY_NODE_FLAGS]);
    assert.deepEqual(missingNodeFlags(['--cpu-prof']), [...GATEWAY_NODE_FLAGS]);
    assert.deepEqual(missingNodeFlags(['--initial-old-space-size=256']), []);
    assert.deepEqual(missingNodeFlags(['--initial_old_space_size=128']), []);
    assert.deepEqual(missingNodeFlags(['--initial-old-space-size-x=128']), [...GATEWAY_NODE_FLAGS]);
  });

  test('the heap floor stays with the main thread: worker threads get V8\'s own sizing', () => {
    const floor = majorCollections(false);
    const confined = majorCollections(true);
    // With the floor, ~100 MB of promoted garbage fits under 128 MB: 0-2 full collections (3
    // seen on a loaded machine); V8's own sizing collects every few tens of MB (5-12 seen).
    assert.ok(floor.worker <= 3 && floor.main <= 3, `with the floor everywhere: ${JSON.stringify(floor)}`);
    assert.ok(confined.worker >= floor.worker + 2, `confined: the worker collects as without the flag (${JSON.stringify(confined)} vs ${JSON.stringify(floor)})`);
    assert.ok(confined.main <= 3, `confined: the main thread keeps its floor (${JSON.stringify(confined)})`);
  });

  test('npm start passes them', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.deepEqual(flagsBefore(pkg.scripts.start.split(/\s+/), /cli\/main\.js$/), [...GATEWAY_NODE_FLAGS]);
  });

  test("the container's ENTRYPOINT passes them", () => {
    const df = parseDockerfile(fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'));
    const entry = argv(last(df.stages[df.stages.length - 1], 'ENTRYPOINT'));
    assert.deepEqual(flagsBefore(entry, /cli\/main\.js$/), [...GATEWAY_NODE_FLAGS]);
  });

  test('the deployment docs and the Helm values name them where they show the entrypoint', () => {
    for (const doc of ['docs/container.md', 'docs/kubernetes.md', 'helm/deid-gateway/values.yaml', 'README.md']) {
      const text = fs.readFileSync(path.join(REPO, doc), 'utf8');
      for (const flag of GATEWAY_NODE_FLAGS) assert.ok(text.includes(flag), `${doc} does not mention ${flag}`);
    }
  });

  test("the deid-gateway command's shebang passes them, and a real process started through it has them", async () => {
    const shebang = fs.readFileSync(MAIN, 'utf8').split('\n')[0];
    assert.equal(shebang, `#!/usr/bin/env -S node ${GATEWAY_NODE_FLAGS.join(' ')}`);
    // As npm links a bin: executable, started by the kernel through its shebang.
    fs.chmodSync(MAIN, 0o755);
    assert.doesNotMatch(await serveOnce(MAIN, []), WARNING);
  });

  test('started without them, the gateway says so at start (and still runs)', async () => {
    assert.match(await serveOnce(process.execPath, [MAIN]), WARNING);
    assert.doesNotMatch(await serveOnce(process.execPath, [...GATEWAY_NODE_FLAGS, MAIN]), WARNING);
  });
});
