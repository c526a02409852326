import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig } from '../../src/config/load';
import { repoRoot, withTempDir } from '../support/tools';

test('the embedded default and the deployment example validate', () => {
  const d = loadConfig(DEFAULT_CONFIG_FILE, {}).config;
  assert.equal(d.dimse.host, '127.0.0.1', 'the embedded default stays on loopback');
  assert.equal(d.destinations['research-folder'].type, 'folder');
  const e = loadConfig(path.join(repoRoot(), 'config/example-deployment.yaml'), {}).config;
  assert.equal(e.routes[1].options.length, 3);
  assert.equal(e.dimse.tls.requireClientCert, true);
});

test('environment overrides apply before validation', () => {
  const { config, hash } = loadConfig(DEFAULT_CONFIG_FILE, { DEID__DIMSE__PORT: '11999', DEID__SPOOL__WORKERS: '3' });
  assert.equal(config.dimse.port, 11999);
  assert.equal(config.spool.workers, 3);
  assert.notEqual(hash, loadConfig(DEFAULT_CONFIG_FILE, {}).hash, 'the config hash changes with the config');
});

test('a bad config stops with a message naming the field', async () => {
  await withTempDir((dir) => {
    const cases: [string, RegExp][] = [
      ['routes: []\ndestinations: {}\n', /routes: .*(at least|>=) ?1/i],
      ['routes: [{name: a, destinations: [nowhere]}]\ndestinations: {}\n', /routes\.0\.destinations: unknown destination "nowhere"/],
      ['routes: [{name: a, destinations: [d]}]\ndestinations: {d: {type: folder, path: x}}\ndimse: {aeTitle: "THIS AE TITLE IS FAR TOO LONG"}\n', /dimse\.aeTitle/],
      ['routes: [{name: a, destinations: [d], profile: everything}]\ndestinations: {d: {type: folder, path: x}}\n', /routes\.0\.profile/],
      ['routes: [{name: a, destinations: [d]}]\ndestinations: {d: {type: stow-rs, url: not-a-url}}\n', /destinations\.d\.url/],
      ['routes: [{name: a, destinations: [d]}]\ndestinations: {d: {type: folder, path: x}}\nsecret: abc\n', /Unrecognized key.*secret/i],
      ['routes: [\n', /not valid YAML/],
      ['routes: [{name: a, destinations: [d], profile: basic, options: [retainLongFullDates, retainLongModifiedDates]}]\ndestinations: {d: {type: folder, path: x}}\n', /routes\.0\.options: retainLongFullDates and retainLongModifiedDates are alternatives/],
      ['routes: [{name: a, destinations: [d], options: [retainUIDs]}]\ndestinations: {d: {type: folder, path: x}}\n', /routes\.0\.options: Table E\.1-1 options apply to the basic profile only/],
    ];
    for (const [yaml, message] of cases) {
      const file = path.join(dir, 'c.yaml');
      fs.writeFileSync(file, yaml);
      assert.throws(() => loadConfig(file, {}), (err: unknown) => err instanceof ConfigError && message.test(err.message), `expected ${message} for:\n${yaml}`);
    }
  });
});
