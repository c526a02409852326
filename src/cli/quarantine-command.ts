import { Command } from 'commander';
import * as fs from 'node:fs';
import { UsageError } from './settings-from-options';

interface ApiOptions {
  api: string;
  tokenFile?: string;
}

/** Calls the running gateway's API (the spool belongs to that one process). */
async function call(o: ApiOptions, method: string, path: string): Promise<unknown> {
  const token = o.tokenFile ? fs.readFileSync(o.tokenFile, 'utf8').split('\n')[0].trim() : process.env.DEID_API_TOKEN;
  if (!token) throw new UsageError('an API token is needed: --token-file FILE or $DEID_API_TOKEN');
  const res = await fetch(`${o.api.replace(/\/$/, '')}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${body.error ?? ''}`);
  return body;
}

const withApi = (cmd: Command): Command =>
  cmd.option('--api <url>', 'the gateway API', 'http://127.0.0.1:8080').option('--token-file <file>', 'API token (default: $DEID_API_TOKEN)');

/** `deid-gateway quarantine list | release ID | purge ID`, through the gateway's REST API. */
export function quarantineCommand(): Command {
  const q = new Command('quarantine').description('list, release (re-run) or purge quarantined instances of a running gateway');
  q.addCommand(withApi(new Command('list')).action(async (o: ApiOptions) => {
    const items = (await call(o, 'GET', '/api/quarantine')) as { id: string; stage: string; code: string; at: string; reason: string }[];
    for (const i of items) process.stdout.write(`${i.id}\t${i.stage}\t${i.code}\t${i.at}\t${i.reason}\n`);
    if (!items.length) process.stdout.write('quarantine is empty\n');
  }));
  q.addCommand(withApi(new Command('release').argument('<id>')).action(async (id: string, o: ApiOptions) => {
    await call(o, 'POST', `/api/quarantine/${encodeURIComponent(id)}/release`);
    process.stdout.write(`released ${id}\n`);
  }));
  q.addCommand(withApi(new Command('purge').argument('<id>')).action(async (id: string, o: ApiOptions) => {
    await call(o, 'DELETE', `/api/quarantine/${encodeURIComponent(id)}`);
    process.stdout.write(`purged ${id}\n`);
  }));
  return q;
}
