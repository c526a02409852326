import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferSource } from '../../src/dicom/byte-source';
import { readInstance } from '../../src/dicom/part10';
import { RouteSchema } from '../../src/config/schema';
import { addressMatches, RoutingFacts, selectRoutes } from '../../src/pipeline/routing';
import { el, makeImage } from '../support/dicom-builder';

function facts(extra: Parameters<typeof el>[] = [], assoc: Partial<RoutingFacts> = {}): RoutingFacts {
  const inst = readInstance(new BufferSource(makeImage({ modality: 'CT', extra: extra.map((a) => el(...a)) })));
  return { callingAE: 'PACS', calledAE: 'DEIDGW', peer: '::ffff:10.20.5.17', elements: inst.dataset.elements, src: inst.dataset.src, ...assoc };
}
const route = (r: object) => RouteSchema.parse({ destinations: ['d'], ...r });

test('CIDR and address matching, IPv4-mapped IPv6 included', () => {
  assert.ok(addressMatches('::ffff:10.20.5.17', '10.20.0.0/16'));
  assert.ok(addressMatches('10.20.5.17', '10.20.5.17'));
  assert.ok(!addressMatches('10.21.5.17', '10.20.0.0/16'));
  assert.ok(addressMatches('192.168.1.1', '0.0.0.0/0'));
  assert.ok(!addressMatches(undefined, '0.0.0.0/0'));
});

test('conditions on the association, modality, SOP class and tags', () => {
  const routes = [
    route({ name: 'wrong-ae', match: { callingAE: 'OTHER' } }),
    route({ name: 'wrong-net', match: { sourceIp: '192.168.0.0/16' } }),
    route({ name: 'mr-only', match: { modality: ['MR'] } }),
    route({ name: 'needs-desc', match: { tags: [{ tag: 'StudyDescription', present: true }] } }),
    route({ name: 'research-ct', match: { callingAE: 'PACS', sourceIp: '10.20.0.0/16', modality: ['CT'], sopClass: ['1.2.840.10008.5.1.4.1.1.2'], tags: [{ tag: '0008,1030', regex: '^RESEARCH' }, { tag: 'BodyPartExamined', equals: 'HEAD' }] } }),
    route({ name: 'catch-all' }),
  ];
  const research = facts([['StudyDescription', 'RESEARCH brain']]);
  assert.deepEqual(selectRoutes(routes, 'first-match', research).map((r) => r.name), ['needs-desc']);
  assert.deepEqual(selectRoutes(routes, 'fan-out', research).map((r) => r.name), ['needs-desc', 'research-ct', 'catch-all']);
  const clinical = facts([['StudyDescription', 'CLINICAL']]);
  assert.deepEqual(selectRoutes(routes, 'fan-out', clinical).map((r) => r.name), ['needs-desc', 'catch-all']);
  assert.deepEqual(selectRoutes(routes, 'first-match', facts()).map((r) => r.name), ['catch-all']);
  assert.deepEqual(selectRoutes(routes.slice(0, 3), 'first-match', facts()), [], 'no match: dropped by the caller');
});
