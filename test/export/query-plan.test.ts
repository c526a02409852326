/**
 * The study query plan shared by the DICOMweb and DIMSE sources, each protocol's encoding of
 * it, and the one check of the answers on our side. Pure functions: no PACS.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dateRange, FoundStudies, planStudyRequests, QueryField, StudyRequest, studyMatches, wildcardRegExp } from '../../src/export/query-plan';
import { pacsPattern, studyFinds, UIDS_PER_REQUEST } from '../../src/export/sources/dimse-query';
import { qidoValue, studyQueries } from '../../src/export/sources/qido-query';
import { ExportQuery, SourceError, StudyRef } from '../../src/export/types';

/** Each request as `keyword=value|value` strings, in order. */
const shape = (reqs: StudyRequest[]): string[][] => reqs.map((r) => r.keys.map((k) => `${k.keyword}=${k.values.join('|')}`));
const none = new Set<QueryField>();
const sent = (...fields: QueryField[]): Set<QueryField> => new Set(fields);
const refused = (e: unknown): boolean => e instanceof SourceError && !e.transient;

describe('planStudyRequests: which list drives, what is sent', () => {
  it('the ID list needing the fewest requests drives; single values of the others are sent, several are not', () => {
    assert.deepEqual(shape(planStudyRequests({ patientIds: ['P1'], accessionNumbers: ['A1', 'A2'], studyUids: ['1', '2', '3'] }, 1)), [
      ['PatientID=P1'],
    ]);
    // Ties go to the more selective list (study UIDs, accession numbers, patient IDs).
    assert.deepEqual(shape(planStudyRequests({ patientIds: ['P1', 'P2'], accessionNumbers: ['A1', 'A2', 'A1'] }, 1)), [
      ['AccessionNumber=A1'],
      ['AccessionNumber=A2'],
    ]);
    assert.deepEqual(shape(planStudyRequests({ patientIds: ['P1'], accessionNumbers: ['A1'], studyUids: ['1', '2'] }, 1)), [
      ['PatientID=P1', 'AccessionNumber=A1'],
    ]);
  });

  it('study UIDs count by chunk where the protocol has UID lists', () => {
    const uids = ['1', '2', '3', '1'];
    assert.deepEqual(shape(planStudyRequests({ studyUids: uids, patientIds: ['P1', 'P2'] }, 1)), [['PatientID=P1'], ['PatientID=P2']]);
    assert.deepEqual(shape(planStudyRequests({ studyUids: uids, patientIds: ['P1', 'P2'] }, 100)), [['StudyInstanceUID=1|2|3']]);
    const many = Array.from({ length: 5 }, (_, i) => `2.25.${i}`);
    assert.deepEqual(planStudyRequests({ studyUids: many }, 2).map((r) => r.keys[0].values.length), [2, 2, 1]);
  });

  it('modalities drive only without an ID list (one modality may be most of the PACS)', () => {
    assert.deepEqual(shape(planStudyRequests({ modalitiesInStudy: ['ct', ' MR', 'CT'] }, 1)), [['ModalitiesInStudy=CT'], ['ModalitiesInStudy=MR']]);
    assert.deepEqual(shape(planStudyRequests({ modalitiesInStudy: ['CT'], patientIds: ['P1', 'P2', 'P3'] }, 1)), [
      ['ModalitiesInStudy=CT', 'PatientID=P1'],
      ['ModalitiesInStudy=CT', 'PatientID=P2'],
      ['ModalitiesInStudy=CT', 'PatientID=P3'],
    ]);
    assert.deepEqual(shape(planStudyRequests({ modalitiesInStudy: ['CT', 'MR'], patientIds: ['P1'] }, 1)), [['PatientID=P1']]);
  });

  it('dates and the description go with every request; open ranges; nothing asked, one universal request', () => {
    assert.deepEqual(shape(planStudyRequests({ studyDate: { from: '20240101' }, studyDescription: ' *Brain* ', patientIds: ['P1', 'P2'] }, 1)), [
      ['StudyDate=20240101-', 'StudyDescription=*Brain*', 'PatientID=P1'],
      ['StudyDate=20240101-', 'StudyDescription=*Brain*', 'PatientID=P2'],
    ]);
    assert.deepEqual(shape(planStudyRequests({ studyDate: { to: '20241231' } }, 1)), [['StudyDate=-20241231']]);
    assert.deepEqual(shape(planStudyRequests({ studyDate: {}, studyDescription: '  ' }, 1)), [[]]);
    assert.deepEqual(shape(planStudyRequests({}, 1)), [[]]);
  });

  it('an empty list matches nothing: no request at all', () => {
    assert.deepEqual(planStudyRequests({ patientIds: ['P1'], studyUids: [] }, 1), []);
    assert.deepEqual(planStudyRequests({ modalitiesInStudy: [] }, 100), []);
  });

  it('values a PACS would not match literally are refused (permanent), without echoing them', () => {
    for (const q of [{ patientIds: ['P1', ' '] }, { accessionNumbers: ['A\\B'] }, { patientIds: ['P*'] }, { studyUids: ['1.2?'] }] as ExportQuery[]) {
      assert.throws(() => planStudyRequests(q, 1), (e: unknown) => refused(e) && !/P\*|A\\B|1\.2\?/.test((e as Error).message), JSON.stringify(q));
    }
    assert.throws(() => planStudyRequests({ studyDate: { from: '2024-01-01' } }, 1), refused);
  });

  it('dateRange: from-to, from-, -to; undefined without a bound', () => {
    assert.equal(dateRange({ from: '20240101', to: '20241231' }), '20240101-20241231');
    assert.equal(dateRange({ from: '20240101' }), '20240101-');
    assert.equal(dateRange({ to: '20241231' }), '-20241231');
    assert.equal(dateRange({ from: '', to: '' }), undefined);
    assert.equal(dateRange(undefined), undefined);
    assert.throws(() => dateRange({ to: '2024123' }), refused);
  });
});

describe('QIDO-RS encoding of the plan', () => {
  const INCLUDE = ['StudyInstanceUID', 'PatientID', 'AccessionNumber', 'StudyDate', 'StudyDescription', 'ModalitiesInStudy', 'NumberOfStudyRelatedInstances'].map((f) => ['includefield', f]);

  it('one study UID per request, keys then includefield; a value sent as is counts as sent', () => {
    const qs = studyQueries({ patientIds: ['P1', 'P2', 'P3'], studyUids: ['1', '2', '1'], modalitiesInStudy: ['ct'] });
    assert.deepEqual(qs.map((q) => q.params), [
      [['ModalitiesInStudy', 'CT'], ['StudyInstanceUID', '1'], ...INCLUDE],
      [['ModalitiesInStudy', 'CT'], ['StudyInstanceUID', '2'], ...INCLUDE],
    ]);
    assert.deepEqual([...qs[0].sent].sort(), ['modalitiesInStudy', 'studyUids'], 'three patient IDs: checked on the answers only');
    assert.deepEqual(studyQueries({}), [{ params: INCLUDE, sent: none }]);
    assert.deepEqual(studyQueries({ accessionNumbers: [] }), []);
  });

  it('a value widened by qidoValue is not sent exactly: its field is left to the check', () => {
    const [q] = studyQueries({ patientIds: ['P 1'], studyDescription: '*head, neck*', studyDate: { from: '20240101' } });
    assert.deepEqual(q.params.slice(0, 3), [['StudyDate', '20240101-'], ['StudyDescription', '*head??neck*'], ['PatientID', 'P?1']]);
    assert.deepEqual([...q.sent], ['studyDate']);
    assert.deepEqual([...studyQueries({ studyDescription: 'Knee*' })[0].sent], ['studyDescription']);
  });

  it('qidoValue: nothing to percent-encode; such characters become wildcards', () => {
    assert.equal(qidoValue('1.2.840.10008'), '1.2.840.10008');
    assert.equal(qidoValue('*Head, neck?'), '*Head??neck?');
    assert.equal(qidoValue('Crâne éé x'), 'Cr*ne?*?x');
    assert.equal(qidoValue('a&b=c%d+e#f'), 'a?b?c?d?e?f');
  });
});

describe('C-FIND encoding of the plan', () => {
  it('every return key, the plan on top; letters of the description as `?`, so the description is checked here', () => {
    const finds = studyFinds({ patientIds: ['P1', 'P2'], accessionNumbers: ['A1', 'A2', 'A1'], modalitiesInStudy: ['mr'], studyDate: { from: '20240101' }, studyDescription: '*Brain 3T*' });
    assert.deepEqual(finds.map((f) => [f.identifier.AccessionNumber, f.identifier.PatientID, f.identifier.ModalitiesInStudy, f.identifier.StudyDate, f.identifier.StudyDescription]), [
      ['A1', '', 'MR', '20240101-', '*????? 3?*'],
      ['A2', '', 'MR', '20240101-', '*????? 3?*'],
    ]);
    assert.deepEqual([...finds[0].sent].sort(), ['accessionNumbers', 'modalitiesInStudy', 'studyDate']);
    assert.deepEqual(studyFinds({}), [{
      identifier: {
        QueryRetrieveLevel: 'STUDY', StudyInstanceUID: '', PatientID: '', AccessionNumber: '', StudyDate: '', StudyDescription: '', ModalitiesInStudy: '', NumberOfStudyRelatedInstances: '',
      },
      sent: none,
    }]);
  });

  it('study UIDs as UID lists of at most UIDS_PER_REQUEST', () => {
    const uids = Array.from({ length: UIDS_PER_REQUEST + 1 }, (_, i) => `2.25.${i}`);
    const finds = studyFinds({ studyUids: uids });
    assert.deepEqual(finds.map((f) => f.identifier.StudyInstanceUID), [uids.slice(0, UIDS_PER_REQUEST), uids[UIDS_PER_REQUEST]]);
    assert.ok(finds.every((f) => f.sent.has('studyUids')));
  });

  it('a description without letters is sent as is; a non-ASCII one is not sent at all', () => {
    assert.deepEqual([...studyFinds({ studyDescription: '*3*' })[0].sent], ['studyDescription']);
    const [f] = studyFinds({ studyDescription: '*Müller*' });
    assert.equal(f.identifier.StudyDescription, '');
    assert.equal(f.sent.size, 0);
    assert.equal(pacsPattern('*Müller*'), '', 'non-ASCII patterns are matched on our side only');
    assert.equal(pacsPattern('Chest c?'), '????? ??');
    assert.throws(() => studyFinds({ studyDate: { to: '2024-01-01' } }), refused);
  });
});

describe('studyMatches: one check of the answers for both protocols', () => {
  const full: StudyRef = {
    studyUid: '2.25.1', patientId: 'P1', accessionNumber: 'A1', studyDate: '20240105', studyDescription: 'Head CT', modalities: ['CT', 'SR'],
  };
  const ok = (q: ExportQuery, s: StudyRef = full, fields: Set<QueryField> = none): boolean => studyMatches(s, q, fields);

  it('every attribute present is checked; lists are OR-ed, fields AND-ed', () => {
    assert.ok(ok({}));
    assert.ok(ok({ studyUids: ['2.25.9', '2.25.1'], patientIds: ['P1'], accessionNumbers: ['A0', 'A1'] }));
    assert.ok(!ok({ studyUids: ['2.25.9'] }, full, sent('studyUids')), 'the server\'s word never beats the answer');
    assert.ok(!ok({ patientIds: ['P1'], accessionNumbers: ['A2'] }));
    assert.ok(!ok({ patientIds: ['p1'] }), 'IDs are matched exactly (Orthanc matches PatientID case-insensitively)');
    assert.ok(!ok({ patientIds: [] }), 'an empty list matches nothing');
  });

  it('multi-valued lists are checked here whatever was sent', () => {
    assert.ok(!ok({ patientIds: ['P2', 'P3'] }, full, sent('patientIds')));
    assert.ok(ok({ modalitiesInStudy: ['mr', 'sr'] }));
    assert.ok(!ok({ modalitiesInStudy: ['MR', 'US'] }, full, sent('modalitiesInStudy')));
  });

  it('the description: DICOM wildcards, case-insensitive', () => {
    assert.ok(ok({ studyDescription: '*ct*' }));
    assert.ok(ok({ studyDescription: 'HEAD?CT' }));
    assert.ok(ok({ studyDescription: ' head ct ' }));
    assert.ok(!ok({ studyDescription: 'head' }));
    assert.ok(!ok({ studyDescription: '*mr*' }, full, sent('studyDescription')));
  });

  it('date ranges, closed and open-ended, inclusive; old-style dates read', () => {
    assert.ok(ok({ studyDate: { from: '20240105', to: '20240105' } }));
    assert.ok(ok({ studyDate: { from: '20240101' } }));
    assert.ok(ok({ studyDate: { to: '20240105' } }));
    assert.ok(!ok({ studyDate: { to: '20240104' } }));
    assert.ok(!ok({ studyDate: { from: '20240106' } }));
    assert.ok(ok({ studyDate: { from: '20240301', to: '20240301' } }, { ...full, studyDate: '2024.03.01' }));
  });

  it('an attribute missing from the answer: the server\'s word when the request sent exactly that condition, left out otherwise', () => {
    const bare: StudyRef = { studyUid: '2.25.1' };
    const cases: Array<[ExportQuery, QueryField]> = [
      [{ patientIds: ['P1'] }, 'patientIds'],
      [{ accessionNumbers: ['A1', 'A2'] }, 'accessionNumbers'],
      [{ studyDate: { from: '20240101' } }, 'studyDate'],
      [{ modalitiesInStudy: ['MR'] }, 'modalitiesInStudy'],
      [{ studyDescription: 'head*' }, 'studyDescription'],
    ];
    for (const [q, field] of cases) {
      assert.ok(ok(q, bare, sent(field)), `${field} sent`);
      assert.ok(!ok(q, bare, none), `${field} not sent`);
      assert.ok(!ok(q, bare, sent(...(Object.keys(q) as QueryField[]).filter((f) => f !== field), 'studyUids')), `${field}: another field sent`);
    }
    // A date that is not one is as good as none.
    assert.ok(!ok({ studyDate: { from: '20240101' } }, { ...bare, studyDate: 'unknown' }));
    assert.ok(ok({ studyDate: { from: '20240101' } }, { ...bare, studyDate: 'unknown' }, sent('studyDate')));
    // A pattern that an empty description matches holds without one.
    assert.ok(ok({ studyDescription: '*' }, bare));
    assert.ok(!ok({ studyDescription: '?*' }, bare));
    // The usual gap: a patient's study without an accession number, three accession numbers asked.
    assert.ok(!ok({ patientIds: ['P1'], accessionNumbers: ['A1', 'A2', 'A3'] }, { ...full, accessionNumber: undefined }, sent('patientIds')));
  });

  it('wildcardRegExp: * and ?, everything else literal, case-insensitive, ? one character', () => {
    assert.ok(wildcardRegExp('*ct*').test('Head CT'));
    assert.ok(wildcardRegExp('a?c').test('ABC'));
    assert.ok(!wildcardRegExp('a?c').test('abbc'));
    assert.ok(wildcardRegExp('1.2(3)').test('1.2(3)'));
    assert.ok(!wildcardRegExp('1.2').test('1x2'));
    assert.ok(wildcardRegExp('a?b').test('a😀b'));
    assert.ok(wildcardRegExp('*').test('line\nbreak'));
  });
});

describe('FoundStudies', () => {
  it('each study once, only matching ones; a study a request could not vouch for may come from another', () => {
    const found = new FoundStudies({ patientIds: ['P1', 'P2'], studyDate: { from: '20240101' } });
    found.add({ studyUid: '1', patientId: 'P1', studyDate: '20240105', studyDescription: 'first' }, none);
    found.add({ studyUid: '1', patientId: 'P1', studyDate: '20240105', studyDescription: 'again' }, none);
    found.add({ studyUid: '2', patientId: 'P3', studyDate: '20240105' }, sent('patientIds'));
    found.add({ studyUid: '3', patientId: 'P2' }, none);
    found.add({ studyUid: '3', patientId: 'P2' }, sent('studyDate', 'patientIds'));
    found.add(null, none);
    found.add(undefined, none);
    assert.deepEqual(found.list().map((s) => [s.studyUid, s.studyDescription]), [['1', 'first'], ['3', undefined]]);
  });
});
