import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BufferSource } from '../../src/dicom/byte-source';
import { findElement, stringValue } from '../../src/dicom/dataset';
import { readInstance } from '../../src/dicom/part10';
import { tagOf } from '../../src/dicom/tags';
import { DeidOutcome } from '../../src/deid/deidentify';
import { OptionName } from '../../src/deid/profiles/types';
import { Override } from '../../src/deid/settings';
import { El, el, makeImage, seq } from '../support/dicom-builder';
import { acceptAllRisks, deidBytes, outputBytes, settings } from '../helpers/engine';

/** Reads one top-level string attribute of an output (via the engine's reader). */
function attr(output: Buffer, keyword: string): string | undefined {
  const inst = readInstance(new BufferSource(output));
  const found = findElement(inst.dataset.elements, tagOf(...keywordTag(keyword)));
  return found ? stringValue(inst.dataset.src, found) : undefined;
}
const KEYWORDS: Record<string, [number, number]> = {
  PatientName: [0x0010, 0x0010], PatientID: [0x0010, 0x0020], StudyDate: [0x0008, 0x0020], ContentDate: [0x0008, 0x0023],
  StudyInstanceUID: [0x0020, 0x000d], SOPInstanceUID: [0x0008, 0x0018], ImageComments: [0x0020, 0x4000],
  InstitutionName: [0x0008, 0x0080], PatientAge: [0x0010, 0x1010], StudyDescription: [0x0008, 0x1030],
  LongitudinalTemporalInformationModified: [0x0028, 0x0303], DeidentificationMethod: [0x0012, 0x0063],
};
const keywordTag = (k: string): [number, number] => KEYWORDS[k] ?? assert.fail(`test keyword ${k} not mapped`);

const image = (extra: El[] = []): Buffer => makeImage({ extra: [el('PatientName', 'Doe^Jane'), el('PatientID', 'MRN-77231'), ...extra] });
const basic = (options: OptionName[] = [], overrides: Override[] = []) => settings({ profile: 'basic', options: new Set(options), overrides });
const quarantineCode = (o: DeidOutcome): string | undefined => (o.kind === 'quarantine' ? o.code : undefined);

describe('leak guard', () => {
  test('catches a patient name that an override lets through in ImageComments', () => {
    const input = image([el('ImageComments', 'scan of JANE DOE, follow-up')]);
    const o = deidBytes(input, basic([], [{ tag: 0x00204000, action: 'keep' }]));
    assert.equal(quarantineCode(o), 'LEAK_DETECTED');
    assert.match(o.kind === 'quarantine' ? o.reason : '', /ImageComments \(0020,4000\)/);
    assert.doesNotMatch(o.kind === 'quarantine' ? o.reason : '', /jane|doe/i, 'the reason names the place, never the value');
  });
  test('the same comment without the name passes, and is kept', () => {
    const o = deidBytes(image([el('ImageComments', 'follow-up scan')]), basic([], [{ tag: 0x00204000, action: 'keep' }]));
    assert.equal(attr(outputBytes(o), 'ImageComments'), 'follow-up scan');
  });
  test('catches the original PatientID placed in a kept private tag', () => {
    const priv = [el('PatientAge', '041Y'), { tag: 0x00091010, vr: 'LO', value: 'ACME 1' }, { tag: 0x00091011, vr: 'LO', value: 'id MRN-77231' }];
    // Without the option the private block is removed, so nothing leaks:
    assert.equal(deidBytes(image(priv), basic()).kind, 'forward');
    // An explicit keep of the private element is caught by the guard:
    const o = deidBytes(image(priv), basic([], [{ tag: 0x00091011, action: 'keep' }, { tag: 0x00091010, action: 'keep' }]));
    assert.equal(quarantineCode(o), 'LEAK_DETECTED');
  });
});

describe('basic profile options', () => {
  test('without options dates are emptied or dummied, UIDs remapped, institution removed', () => {
    const out = outputBytes(deidBytes(image([el('InstitutionName', 'St Elsewhere')]), basic()));
    assert.equal(attr(out, 'StudyDate'), '');
    assert.notEqual(attr(out, 'StudyInstanceUID'), '1.2.826.0.1.3680043.9.7777.3.1');
    assert.match(attr(out, 'StudyInstanceUID') ?? '', /^2\.25\.\d+$/);
    assert.ok(!out.includes('St Elsewhere'));
    assert.equal(attr(out, 'LongitudinalTemporalInformationModified'), 'REMOVED');
  });
  test('retainUIDs keeps the original UIDs', () => {
    const out = outputBytes(deidBytes(image(), basic(['retainUIDs'])));
    assert.equal(attr(out, 'StudyInstanceUID'), '1.2.826.0.1.3680043.9.7777.3.1');
  });
  test('retainInstitutionIdentity keeps the institution', () => {
    const out = outputBytes(deidBytes(image([el('InstitutionName', 'St Elsewhere')]), basic(['retainInstitutionIdentity'])));
    assert.equal(attr(out, 'InstitutionName'), 'St Elsewhere');
  });
  test('retainPatientCharacteristics keeps the age; without it the age is removed', () => {
    assert.equal(attr(outputBytes(deidBytes(image([el('PatientAge', '041Y')]), basic(['retainPatientCharacteristics']))), 'PatientAge'), '041Y');
    assert.equal(attr(outputBytes(deidBytes(image([el('PatientAge', '041Y')]), basic())), 'PatientAge'), undefined);
  });
  test('retainLongFullDates keeps dates as they are', () => {
    const out = outputBytes(deidBytes(image(), basic(['retainLongFullDates'])));
    assert.equal(attr(out, 'ContentDate'), '20200101');
    assert.equal(attr(out, 'LongitudinalTemporalInformationModified'), 'UNMODIFIED');
  });
  test('retainLongModifiedDates shifts every date of a patient by the same offset, within the range', () => {
    const s = { ...basic(['retainLongModifiedDates']), dateShiftDays: { min: -400, max: -10 } };
    const a = outputBytes(deidBytes(image([el('ContentDate', '20200301')]), s));
    const b = outputBytes(deidBytes(image([el('ContentDate', '20210615'), el('SOPInstanceUID', '1.2.3.99')]), s));
    const days = (from: string, to: string): number =>
      (Date.UTC(+to.slice(0, 4), +to.slice(4, 6) - 1, +to.slice(6, 8)) - Date.UTC(+from.slice(0, 4), +from.slice(4, 6) - 1, +from.slice(6, 8))) / 86_400_000;
    const shiftA = days('20200301', attr(a, 'ContentDate')!);
    const shiftB = days('20210615', attr(b, 'ContentDate')!);
    assert.equal(shiftA, shiftB, 'one offset per patient');
    assert.ok(shiftA >= -400 && shiftA <= -10, `offset ${shiftA} within range`);
    assert.equal(attr(a, 'LongitudinalTemporalInformationModified'), 'MODIFIED');
    // Another patient gets another offset (with overwhelming probability for this fixed secret).
    const other = outputBytes(deidBytes(image([el('PatientID', 'OTHER-1'), el('ContentDate', '20200301')]), s));
    assert.notEqual(days('20200301', attr(other, 'ContentDate')!), shiftA);
  });
  test('cleanDescriptors keeps a description but scrubs the patient name in it', () => {
    const out = outputBytes(deidBytes(image([el('StudyDescription', 'BRAIN Doe follow-up 2020-01-02')]), basic(['cleanDescriptors'])));
    const d = attr(out, 'StudyDescription')!;
    assert.match(d, /^BRAIN XXX follow-up X{10}$/);
  });
  test('retainSafePrivate keeps a safe private element by creator, wherever its block sits', () => {
    // GEMS_ACQU_01 (0019,xx23) "Table Speed" is on Table E.3.10-1; relocate the block to xx = 0x42.
    const priv = [{ tag: 0x00190042, vr: 'LO', value: 'GEMS_ACQU_01' }, { tag: 0x00194223, vr: 'DS', value: '37.5' }, { tag: 0x00194210, vr: 'LO', value: 'not on the list' }];
    const out = outputBytes(deidBytes(image(priv), basic(['retainSafePrivate'])));
    const inst = readInstance(new BufferSource(out));
    assert.ok(findElement(inst.dataset.elements, 0x00190042), 'creator kept');
    assert.equal(stringValue(inst.dataset.src, findElement(inst.dataset.elements, 0x00194223)!), '37.5');
    assert.equal(findElement(inst.dataset.elements, 0x00194210), undefined, 'unsafe element of the same block removed');
    const without = readInstance(new BufferSource(outputBytes(deidBytes(image(priv), basic()))));
    assert.equal(without.dataset.elements.some((e) => (e.tag >>> 16) % 2 === 1), false, 'no private tags without the option');
  });
  test('DeidentificationMethod names the profile and options', () => {
    const out = outputBytes(deidBytes(image(), basic(['retainUIDs', 'cleanDescriptors'])));
    assert.match(attr(out, 'DeidentificationMethod')!, /profile basic\\option cleanDescriptors\\option retainUIDs/);
  });
});

describe('per-run overrides', () => {
  test('replace and empty by tag', () => {
    const out = outputBytes(deidBytes(image([el('ImageComments', 'x')]), basic([], [{ tag: 0x00204000, action: 'replace', value: 'RESEARCH' }, { tag: 0x00100020, action: 'empty' }])));
    assert.equal(attr(out, 'ImageComments'), 'RESEARCH');
    assert.equal(attr(out, 'PatientID'), '');
  });
  test('remove wins over pixel-only keep', () => {
    const out = outputBytes(deidBytes(image(), settings({ overrides: [{ tag: 0x00100010, action: 'remove' }] })));
    assert.equal(attr(out, 'PatientName'), undefined);
  });
});

describe('pseudonyms and lookup table', () => {
  test('PatientID and PatientName become the same prefixed pseudonym', () => {
    const out = outputBytes(deidBytes(image(), settings({ patientIdPrefix: 'STUDY7-' })));
    assert.match(attr(out, 'PatientID')!, /^STUDY7-[A-Z2-7]{16}$/);
    assert.equal(attr(out, 'PatientName'), attr(out, 'PatientID'));
  });
  test('a lookup entry wins over the HMAC pseudonym; a missing entry quarantines when required', () => {
    const table = new Map([['MRN-77231', 'SUBJ-001']]);
    assert.equal(attr(outputBytes(deidBytes(image(), settings({ lookup: { table, required: true } }))), 'PatientID'), 'SUBJ-001');
    const missing = deidBytes(image([el('PatientID', 'MRN-00000')]), settings({ lookup: { table, required: true } }));
    assert.equal(quarantineCode(missing), 'LOOKUP_MISSING');
    const optional = deidBytes(image([el('PatientID', 'MRN-00000')]), settings({ lookup: { table, required: false } }));
    assert.match(attr(outputBytes(optional), 'PatientID')!, /^ANON-/);
  });
});

describe('pixel risk policy', () => {
  const sc = (extra: El[] = []): Buffer => image([el('SOPClassUID', '1.2.840.10008.5.1.4.1.1.7'), ...extra]);
  test('secondary capture is quarantined unless accepted', () => {
    assert.equal(quarantineCode(deidBytes(sc(), settings())), 'PIXEL_RISK');
    assert.equal(deidBytes(sc(), settings({ acceptRisks: new Set(['secondary-capture']) })).kind, 'forward');
  });
  test('BurnedInAnnotation YES is quarantined even for CT, unless accepted', () => {
    const burned = image([el('BurnedInAnnotation', 'YES')]);
    assert.equal(quarantineCode(deidBytes(burned, settings())), 'PIXEL_RISK');
    assert.equal(deidBytes(burned, settings({ acceptRisks: acceptAllRisks })).kind, 'forward');
  });
});

describe('sequences', () => {
  test('references inside sequences map to the same new UID as the referenced instance', () => {
    const referenced = '1.2.826.0.1.3680043.9.7777.2.9';
    const ref = seq('ReferencedImageSequence', [el('ReferencedSOPClassUID', '1.2.840.10008.5.1.4.1.1.4'), el('ReferencedSOPInstanceUID', referenced)]);
    const a = outputBytes(deidBytes(image([ref]), basic()));
    const b = outputBytes(deidBytes(image([el('SOPInstanceUID', referenced)]), basic()));
    const newUid = attr(b, 'SOPInstanceUID')!;
    assert.ok(a.includes(Buffer.from(newUid)), 'the reference carries the referenced instance\'s new UID');
    assert.ok(!a.includes(Buffer.from(referenced)));
  });
  test('an empty item survives; unchanged sequences are copied byte for byte', () => {
    const code = seq('ProcedureCodeSequence', [el('CodeValue', 'X1'), el('CodingSchemeDesignator', '99LOCAL'), el('CodeMeaning', 'Brain')], []);
    const input = image([code]);
    const out = outputBytes(deidBytes(input, basic(['retainUIDs'], [{ tag: 0x00081032, action: 'keep' }])));
    const inBytes = input.subarray(input.indexOf(Buffer.from([0x08, 0x00, 0x32, 0x10])));
    const seqLen = 12 + inBytes.readUInt32LE(8);
    assert.ok(out.includes(inBytes.subarray(0, seqLen)), 'sequence bytes identical, empty item included');
  });
});
