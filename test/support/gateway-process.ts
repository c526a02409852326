import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { GATEWAY_NODE_FLAGS } from '../../src/cli/node-flags';
import { repoRoot } from './tools';

export interface GatewayProcess {
  dimsePort: number;
  apiPort: number;
  pid: number;
  dir: string;
  auditFile: string;
  stderr(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL, no goodbye. */
  kill(): Promise<void>;
}

/**
 * Runs the real gateway (`deid-gateway serve`) in a child process with a config written to
 * `dir/gateway.yaml`, started as its launchers start it (GATEWAY_NODE_FLAGS, then `nodeArgs`);
 * ports are chosen by the OS (port 0) and read from its start-up line.
 */
export async function startGatewayProcess(dir: string, config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Promise<GatewayProcess> {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'gateway.yaml');
  fs.writeFileSync(file, stringify(config));
  const child: ChildProcess = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, ...nodeArgs, path.join(repoRoot(), 'dist/src/cli/main.js'), 'serve', '--config', file], {
    cwd: dir,
    env: { ...process.env, DEID_SECRET: 'integration-test-secret-0123456789', DEID_API_TOKEN: 'test-token-123456', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  const ports = await new Promise<{ dimse: number; api: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${err}`)), 30_000);
    child.stderr!.on('data', (chunk: string) => {
      err += chunk;
      const m = /listening: DIMSE \S+@[^:]+:(\d+)(?:, API http:\/\/[^:]+:(\d+))?/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ dimse: Number(m[1]), api: Number(m[2] ?? 0) });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${err}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    dimsePort: ports.dimse,
    apiPort: ports.api,
    pid: child.pid!,
    dir,
    auditFile: path.join(dir, 'audit.jsonl'),
    stderr: () => err,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A gateway config for tests: loopback, OS-chosen ports, spool and audit under `dir`. */
export function testConfig(dir: string, destinations: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dimse: { aeTitle: 'DEIDGW', host: '127.0.0.1', port: 0, callers: [{ aeTitle: 'STORESCU', hosts: ['127.0.0.0/8'] }] },
    spool: { dir: path.join(dir, 'spool'), workers: 2 },
    routes: [{ name: 'research', profile: 'pixel-only', destinations: Object.keys(destinations) }],
    destinations,
    retry: { maxAttempts: 60, initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0.2 },
    audit: { stdout: false, file: path.join(dir, 'audit.jsonl') },
    api: { host: '127.0.0.1', port: 0 },
    ...extra,
  };
}
