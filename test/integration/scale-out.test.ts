import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { el, makeImage } from '../support/dicom-builder';
import { GatewayProcess, startGatewayProcess, testConfig } from '../support/gateway-process';
import { hasOrthanc, Orthanc, startOrthanc } from '../support/orthanc';
import { storescuAsync, waitFor } from '../support/async-peers';
import { hasTool, repoRoot } from '../support/tools';

/**
 * Scale-out (docs/scaling.md): replicas share the pseudonymization secret and nothing else.
 * Two real gateway processes with the same secret, each with its own spool and audit log, each
 * get half of one study; the research Orthanc must end up with one consistent study. A third
 * replica with another secret is the negative control: the same input becomes another study.
 */
const CLI = path.join(repoRoot(), 'dist/src/cli/main.js');
const skip = !hasOrthanc() ? 'Orthanc with the DICOMweb plugin is not installed (scripts/install-test-deps.sh)'
  : !hasTool('storescu') ? 'DCMTK storescu is not installed (scripts/install-test-deps.sh)' : false;

const STUDY = '1.2.826.0.1.3680043.9.7777.60.1';
const SERIES = '1.2.826.0.1.3680043.9.7777.60.2';
const PATIENT_ID = 'SCALE-OUT-PATIENT-0042';
const PATIENT_NAME = 'Scaleout^Patient';


const storescu = (files: string[], port: number) => storescuAsync(files, port);

interface Stored { study: string; series: string; sop: string; patientId: string; patientName: string; instanceNumber: number }

/** QIDO-RS over every instance, with the patient attributes asked for explicitly. */
async function storedInstances(o: Orthanc): Promise<Stored[]> {
  const r = await fetch(`${o.dicomwebUrl}/instances?includefield=00100010&includefield=00100020&includefield=00200013`, { headers: { Accept: 'application/dicom+json' } });
  if (r.status === 204) return [];
  if (!r.ok) throw new Error(`QIDO /instances: HTTP ${r.status}`);
  const list = (await r.json()) as Record<string, { Value?: unknown[] }>[];
  const v = (j: Record<string, { Value?: unknown[] }>, tag: string): unknown => j[tag]?.Value?.[0];
  return list.map((j) => ({
    study: String(v(j, '0020000D') ?? ''),
    series: String(v(j, '0020000E') ?? ''),
    sop: String(v(j, '00080018') ?? ''),
    patientId: String(v(j, '00100020') ?? ''),
    patientName: String((v(j, '00100010') as { Alphabetic?: string } | undefined)?.Alphabetic ?? ''),
    instanceNumber: Number(v(j, '00200013') ?? NaN),
  }));
}

const auditEvents = (g: GatewayProcess, type: string): Record<string, unknown>[] =>
  fs.readFileSync(g.auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.type === type);

describe('scale-out: replicas with a shared secret and no shared state', { skip }, () => {
  let work: string;
  let orthanc: Orthanc | undefined;
  const gateways: GatewayProcess[] = [];

  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-scale-out-'));
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.kill().catch(() => undefined)));
    await orthanc?.dispose();
    fs.rmSync(work, { recursive: true, force: true });
  });

  async function replica(name: string, o: Orthanc, env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> {
    const dir = path.join(work, name);
    const g = await startGatewayProcess(dir, testConfig(dir, { research: { type: 'stow-rs', url: o.dicomwebUrl } }), env);
    gateways.push(g);
    return g;
  }

  test('two replicas, half a study each: one study, one series, one pseudonym at the research store', { timeout: 180_000 }, async () => {
    const o = (orthanc = await startOrthanc());
    // Same secret (the helper's DEID_SECRET), separate folders: separate spools and audit logs.
    const [a, b] = await Promise.all([replica('replica-a', o), replica('replica-b', o)]);
    assert.notEqual(a.dir, b.dir);

    const inDir = path.join(work, 'study');
    fs.mkdirSync(inDir);
    const files = Array.from({ length: 10 }, (_, i) => {
      const file = path.join(inDir, `instance-${i + 1}.dcm`);
      fs.writeFileSync(file, makeImage({
        modality: 'CT', rows: 32, cols: 32,
        extra: [
          el('StudyInstanceUID', STUDY), el('SeriesInstanceUID', SERIES),
          el('SOPInstanceUID', `${SERIES}.${i + 1}`), el('InstanceNumber', String(i + 1)),
          el('PatientID', PATIENT_ID), el('PatientName', PATIENT_NAME),
        ],
      }));
      return file;
    });

    // Like a TCP load balancer: one association to each replica, at the same time.
    const [sentA, sentB] = await Promise.all([storescu(files.slice(0, 5), a.dimsePort), storescu(files.slice(5), b.dimsePort)]);
    assert.equal(sentA.status, 0, sentA.output);
    assert.equal(sentB.status, 0, sentB.output);
    assert.equal((sentA.output.match(/Received Store Response \(Success\)/g) ?? []).length, 5, sentA.output);
    assert.equal((sentB.output.match(/Received Store Response \(Success\)/g) ?? []).length, 5, sentB.output);

    const stored = await waitFor('10 instances at Orthanc', async () => {
      const list = await storedInstances(o);
      return list.length >= 10 ? list : undefined;
    }, 90_000);
    assert.equal(stored.length, 10, 'every instance exactly once');

    // One consistent study: both replicas computed the same UIDs and pseudonym on their own.
    const studies = new Set(stored.map((i) => i.study));
    const series = new Set(stored.map((i) => i.series));
    assert.equal(studies.size, 1, `one study, got ${[...studies].join(', ')}`);
    assert.equal(series.size, 1, `one series, got ${[...series].join(', ')}`);
    const [study] = studies;
    const [serie] = series;
    assert.match(study, /^2\.25\.\d+$/);
    assert.match(serie, /^2\.25\.\d+$/);
    assert.notEqual(study, STUDY);
    assert.notEqual(serie, SERIES);
    const patients = new Set(stored.map((i) => i.patientId));
    assert.equal(patients.size, 1, `one patient pseudonym, got ${[...patients].join(', ')}`);
    const [pseudonym] = patients;
    assert.match(pseudonym, /^ANON-[A-Z2-7]{16}$/, 'a keyed pseudonym');
    assert.notEqual(pseudonym, PATIENT_ID);
    for (const i of stored) assert.ok(!i.patientName.includes('Scaleout'), `no original name: ${i.patientName}`);
    const sops = stored.map((i) => i.sop);
    assert.equal(new Set(sops).size, 10, 'ten distinct SOP Instance UIDs');
    for (const sop of sops) assert.match(sop, /^2\.25\.\d+$/);
    assert.deepEqual(stored.map((i) => i.instanceNumber).sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

    // Each replica did its half, wrote its own audit chain, and that chain verifies on its own.
    assert.equal(auditEvents(a, 'instance.deidentified').length, 5, 'replica a de-identified its five');
    assert.equal(auditEvents(b, 'instance.deidentified').length, 5, 'replica b de-identified its five');
    const newStudies = new Set([...auditEvents(a, 'instance.deidentified'), ...auditEvents(b, 'instance.deidentified')].map((e) => e.newStudyUid));
    assert.deepEqual([...newStudies], [study], 'both audit logs name the same new study UID');
    assert.equal(await a.stop(), 0);
    assert.equal(await b.stop(), 0);
    for (const g of [a, b]) {
      const verify = spawnSync(process.execPath, [CLI, 'audit', 'verify', g.auditFile], { encoding: 'utf8' });
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    }

    // Negative control: another secret turns the same input into another study.
    const c = await replica('replica-other-secret', o, { DEID_SECRET: 'a-different-secret-for-the-control-0123456789' });
    const sentC = await storescu([files[0]], c.dimsePort);
    assert.equal(sentC.status, 0, sentC.output);
    const after = await waitFor('the control instance at Orthanc', async () => {
      const list = await storedInstances(o);
      return list.length >= 11 ? list : undefined;
    }, 90_000);
    const control = after.filter((i) => !sops.includes(i.sop));
    assert.equal(control.length, 1);
    assert.notEqual(control[0].study, study, 'another secret gives another Study Instance UID');
    assert.notEqual(control[0].series, serie, 'and another Series Instance UID');
    assert.notEqual(control[0].patientId, pseudonym, 'and another patient pseudonym');
    assert.equal(new Set(after.map((i) => i.study)).size, 2);
    assert.equal(await c.stop(), 0);
  });
});
