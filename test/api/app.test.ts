import assert from 'node:assert/strict';
import { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Server } from 'node:http';
import { Registry, Counter } from 'prom-client';
import { Router } from 'express';
import { ApiDeps, createApp } from '../../src/api/app';

const calls: string[] = [];
const registry = new Registry();
new Counter({ name: 'deid_test_total', help: 'test counter', registers: [registry] }).inc(3);
const deps: ApiDeps = {
  tokens: ['s3cret-token-one', 'another-token'],
  readiness: async () => ({ ready: false, checks: { spool: true, 'research-orthanc': false } }),
  status: async () => ({ spool: { incoming: 2 } }),
  metrics: registry,
  quarantine: {
    list: async () => [{ id: 'abc-1', stage: 'ingest', code: 'TRUNCATED', reason: 'short', at: '2026-01-01T00:00:00Z', bytes: 10 }],
    release: async (id, by) => void calls.push(`release ${id} by ${by}`),
    purge: async (id, by) => {
      if (id === 'missing') throw Object.assign(new Error('gone'), { code: 'ENOENT' });
      calls.push(`purge ${id} by ${by}`);
    },
  },
  auditForStudy: async (uid) => [{ type: 'instance.deidentified', newStudyUid: uid }],
  onUnauthorized: (method, path) => void calls.push(`401 ${method} ${path}`),
  dicomweb: Router().post('/studies', (_req, res) => void res.status(200).json({ reached: res.locals.client })),
};

let server: Server;
let base = '';
before(async () => {
  server = createApp(deps).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const auth = { authorization: 'Bearer another-token' };

test('health and metrics need no token; readiness reports each check', async () => {
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  const ready = await fetch(`${base}/readyz`);
  assert.equal(ready.status, 503);
  assert.deepEqual(((await ready.json()) as { checks: unknown }).checks, { spool: true, 'research-orthanc': false });
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /deid_test_total 3/);
});

test('every /api route requires a valid bearer token; failures are reported for the audit', async () => {
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic czNjcmV0' }] as Record<string, string>[]) {
    const r = await fetch(`${base}/api/status`, { headers });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
  }
  assert.deepEqual(calls.splice(0), ['401 GET /status', '401 GET /status', '401 GET /status']);
  assert.deepEqual(await (await fetch(`${base}/api/status`, { headers: auth })).json(), { spool: { incoming: 2 } });
});

test('quarantine: list, release, purge; the acting token is named; bad ids are 400, unknown 404', async () => {
  const list = (await (await fetch(`${base}/api/quarantine`, { headers: auth })).json()) as { id: string }[];
  assert.equal(list[0].id, 'abc-1');
  assert.equal((await fetch(`${base}/api/quarantine/abc-1/release`, { method: 'POST', headers: auth })).status, 202);
  assert.equal((await fetch(`${base}/api/quarantine/abc-1`, { method: 'DELETE', headers: auth })).status, 200);
  assert.deepEqual(calls.splice(0), ['release abc-1 by token#2', 'purge abc-1 by token#2']);
  assert.equal((await fetch(`${base}/api/quarantine/..%2F..%2Fetc/release`, { method: 'POST', headers: auth })).status, 400);
  assert.equal((await fetch(`${base}/api/quarantine/missing`, { method: 'DELETE', headers: auth })).status, 404);
});

test('audit lookup needs a UID', async () => {
  assert.equal((await fetch(`${base}/api/audit?studyUid=DROP%20TABLE`, { headers: auth })).status, 400);
  const entries = (await (await fetch(`${base}/api/audit?studyUid=2.25.1234`, { headers: auth })).json()) as { newStudyUid: string }[];
  assert.equal(entries[0].newStudyUid, '2.25.1234');
  assert.equal((await fetch(`${base}/api/nothing`, { headers: auth })).status, 404);
});

test('STOW-RS receive sits behind the same bearer tokens', async () => {
  assert.equal((await fetch(`${base}/dicomweb/studies`, { method: 'POST' })).status, 401);
  assert.deepEqual(calls.splice(0), ['401 POST /studies']);
  const ok = await fetch(`${base}/dicomweb/studies`, { method: 'POST', headers: auth });
  assert.deepEqual(await ok.json(), { reached: 'token#2' });
});
