import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { lookup, tagForKeyword } from '../../src/dicom/dictionary';
import { DICTIONARY_FILE, renderDictionary } from '../../scripts/generate-dictionary';
import { repoRoot } from '../support/tools';

test('the committed dictionary equals a fresh generation from dcmjs', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dcmjs = require('dcmjs') as { data: { DicomMetaDictionary: { nameMap: Parameters<typeof renderDictionary>[0] } } };
  const committed = fs.readFileSync(path.join(repoRoot(), DICTIONARY_FILE), 'utf8');
  assert.ok(committed === renderDictionary(dcmjs.data.DicomMetaDictionary.nameMap), `${DICTIONARY_FILE} is stale: run npm run generate:dictionary`);
});

test('lookups: standard, repeating groups, pseudo-VRs, supplement, private', () => {
  assert.deepEqual(lookup(0x00100010), { vr: 'PN', keyword: 'PatientName' });
  assert.deepEqual(lookup(0x601e3000), { vr: 'OW', keyword: 'OverlayData' }, 'overlay group 601E resolves to 60xx');
  assert.equal(lookup(0x50020005)?.keyword, 'CurveDimensions');
  assert.equal(lookup(0x00283006)?.vr, 'OW', 'LUT data is binary, never text');
  assert.equal(lookup(0x00280106)?.vr, 'US');
  assert.equal(lookup(0x00100012)?.keyword, 'NameToUse', 'attributes newer than dcmjs come from the supplement');
  assert.equal(lookup(0x00091010), undefined, 'private tags are not in the dictionary');
  assert.equal(lookup(0x00200000)?.vr, 'UL', 'group length');
  assert.equal(tagForKeyword('StudyInstanceUID'), 0x0020000d);
  assert.equal(tagForKeyword('NoSuchKeyword'), undefined);
});
