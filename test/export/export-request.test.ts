import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigSchema } from '../../src/config/schema';
import { describeQuery, parseExportRequest, routeForRequest } from '../../src/export/export-request';
import { queryFromOptions } from '../../src/cli/export-command';

const config = ConfigSchema.parse({
  routes: [{ name: 'research', destinations: ['archive'] }, { name: 'bin', drop: true }],
  destinations: { archive: { type: 'folder', path: '/tmp/x' } },
  sources: { pacs: { type: 'dicomweb', url: 'http://127.0.0.1:1/dicom-web' } },
});

test('export requests are checked with the field named', () => {
  const bad: [unknown, RegExp][] = [
    [{ source: 'pacs', query: {} }, /query: a query needs at least one criterion/],
    [{ source: 'pacs', query: { studyDate: { from: '20250101', to: '20240101' } } }, /query\.studyDate: from must not be after to/],
    [{ source: 'pacs', query: { studyDate: { from: '2024-01-01' } } }, /query\.studyDate\.from: a date as YYYYMMDD/],
    [{ source: 'pacs', query: { accessionNumbers: ['A*'] } }, /query\.accessionNumbers\.0: /],
    [{ source: 'pacs', query: { studyUids: ['1.2.x'] } }, /query\.studyUids\.0: a UID/],
    [{ source: 'pacs', query: { modalitiesInStudy: ['ct'] } }, /query\.modalitiesInStudy\.0/],
    [{ source: 'pacs', query: { patientIds: ['P'] }, extra: 1 }, /body: /],
  ];
  for (const [body, re] of bad) assert.throws(() => parseExportRequest(body), re, JSON.stringify(body));
  const ok = parseExportRequest({ source: 'pacs', query: { studyDate: { from: '20240101' }, modalitiesInStudy: ['CT'] }, route: 'research' });
  assert.equal(ok.route, 'research');
});

test('a job takes a configured route, or a profile + destinations of its own', () => {
  const req = (extra: object) => parseExportRequest({ source: 'pacs', query: { patientIds: ['P1'] }, ...extra });
  assert.equal(routeForRequest(req({ route: 'research' }), config, 'j1').name, 'research');
  const own = routeForRequest(req({ profile: 'basic', options: ['retainUIDs'], destinations: ['archive'] }), config, 'j1');
  assert.deepEqual([own.name, own.profile, own.options, own.destinations], ['export-j1', 'basic', ['retainUIDs'], ['archive']]);
  assert.throws(() => routeForRequest(req({ route: 'nope' }), config, 'j'), /route: unknown route "nope"/);
  assert.throws(() => routeForRequest(req({ route: 'bin' }), config, 'j'), /drops everything/);
  assert.throws(() => routeForRequest(req({ destinations: ['nope'] }), config, 'j'), /destinations: unknown destination/);
  assert.throws(() => routeForRequest(req({ options: ['retainUIDs'], destinations: ['archive'] }), config, 'j'), /basic profile only/);
  assert.throws(() => routeForRequest(parseExportRequest({ source: 'other', query: { patientIds: ['P'] }, route: 'research' }), config, 'j'), /source: unknown source/);
});

test('the audit sees which criteria and how many values, never the values', () => {
  const d = describeQuery({ patientIds: ['SECRET-PATIENT'], accessionNumbers: ['ACC1', 'ACC2'], studyDate: { from: '20240101' }, modalitiesInStudy: ['CT'] });
  assert.deepEqual(d, { patientIds: 1, accessionNumbers: 2, studyDate: '20240101-', modalitiesInStudy: 'CT' });
  assert.ok(!JSON.stringify(d).includes('SECRET'));
});

test('CLI options become a query (lists, comma lists, date ranges)', () => {
  assert.deepEqual(queryFromOptions({ source: 'p', accession: ['A1', 'A2'], studyDate: '20240101-20241231', modality: ['ct'] }), {
    accessionNumbers: ['A1', 'A2'], studyDate: { from: '20240101', to: '20241231' }, modalitiesInStudy: ['CT'],
  });
  assert.deepEqual(queryFromOptions({ source: 'p', studyDate: '20240101-' }).studyDate, { from: '20240101' });
  assert.deepEqual(queryFromOptions({ source: 'p', studyDate: '-20240101' }).studyDate, { to: '20240101' });
  assert.deepEqual(queryFromOptions({ source: 'p', studyDate: '20240101' }).studyDate, { from: '20240101', to: '20240101' });
  assert.throws(() => queryFromOptions({ source: 'p', studyDate: '2024' }), /--study-date/);
});
