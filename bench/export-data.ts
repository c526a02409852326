/**
 * Inputs of bench/export.ts, written with the independent test builder (never with the engine):
 *  - N studies of 2 series x 25 CT instances, 512x512x16 bit (~0.53 MB each), with the
 *    ~130-attribute header and varied pixels of bench/corpus.ts, each study with its own
 *    Study/Series/SOP Instance UIDs and accession number; built in memory one instance at a
 *    time and uploaded to Orthanc (REST POST /instances), never kept;
 *  - one large study: K Enhanced CT multi-frame instances of one series, each streamed to disk
 *    by bench/corpus.ts writeLargeInstance and given its own SOP Instance UID by a same-length
 *    patch of the header (so no length changes), then streamed to Orthanc.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { el, encodeFile, TS } from '../test/support/dicom-builder';
import { ctHeader, ctSlice, LargeInfo, Slot, writeLargeInstance } from './corpus';

/** Test-only UID arc of this benchmark (bench/corpus.ts uses .42, the integration tests .77). */
const ROOT = '1.2.826.0.1.3680043.9.7777.44';

export const SERIES_PER_STUDY = 2;
export const INSTANCES_PER_SERIES = 25;

export interface BenchSeries { studyUid: string; seriesUid: string; instances: number }
export interface BenchStudy { studyUid: string; series: BenchSeries[] }

export const studyUid = (study: number): string => `${ROOT}.1.${study + 1}`;
export const seriesUid = (study: number, series: number): string => `${ROOT}.1.${study + 1}.${series + 1}`;

/** The studies' UIDs (what a ceiling download and an export job ask for). */
export function studyLayout(studies: number): BenchStudy[] {
  return Array.from({ length: studies }, (_, st) => ({
    studyUid: studyUid(st),
    series: Array.from({ length: SERIES_PER_STUDY }, (_, se) => ({ studyUid: studyUid(st), seriesUid: seriesUid(st, se), instances: INSTANCES_PER_SERIES })),
  }));
}

/** Part 10 bytes of instance `slice` of series `series` of study `study` (explicit VR LE). */
export function exportInstance(study: number, series: number, slice: number): Buffer {
  const index = (study * SERIES_PER_STUDY + series) * INSTANCES_PER_SERIES + slice;
  // Three patients, the corpus's study kinds and series kinds; dates, times, pixels vary.
  const slot: Slot = { patient: study % 3, study: Math.floor(study / 3), series: series % 3, slice, index };
  const replace = new Map([
    el('StudyInstanceUID', studyUid(study)),
    el('SeriesInstanceUID', seriesUid(study, series)),
    el('SOPInstanceUID', `${seriesUid(study, series)}.${slice + 1}`),
    el('FrameOfReferenceUID', `${studyUid(study)}.9`),
    el('AccessionNumber', `ACCEXP${String(study + 1).padStart(5, '0')}`),
    el('StudyID', `EXP${study + 1}`),
  ].map((e) => [e.tag, e] as const));
  const header = ctHeader(slot).map((e) => replace.get(e.tag) ?? e);
  return encodeFile([...header, { tag: 0x7fe00010, vr: 'OW', value: ctSlice(512, 512, slot) }], { transferSyntaxUID: TS.explicitLE });
}

/** Every instance of `studies`, study by study, series by series (generator: one in memory at a time). */
export function* allInstances(studies: number): Generator<{ study: number; series: number; slice: number }> {
  for (let st = 0; st < studies; st++) {
    for (let se = 0; se < SERIES_PER_STUDY; se++) for (let i = 0; i < INSTANCES_PER_SERIES; i++) yield { study: st, series: se, slice: i };
  }
}

// ---------------------------------------------------------------- the large study

export interface LargeFile extends LargeInfo {
  sopInstanceUid: string;
}

/**
 * Instance `k` of the large study: bench/corpus.ts writeLargeInstance (Enhanced CT, `frames`
 * 512x512x16-bit frames, per-frame functional groups, streamed to disk) whose SOP Instance UID
 * (in the File Meta group and the data set) is rewritten in place to one of the same length.
 * Every instance has the same Study and Series Instance UID: one study, one series.
 */
export function writeLargeStudyInstance(file: string, frames: number, k: number): LargeFile {
  if (k > 8999) throw new Error('at most 9000 large instances');
  const info = writeLargeInstance(file, frames);
  const slot: Slot = { patient: 0, study: 0, series: 0, slice: 0, index: 0 };
  const sopTag = el('SOPInstanceUID', '').tag;
  const original = String(ctHeader(slot).find((e) => e.tag === sopTag)!.value);
  if (!/\.1000$/.test(original)) throw new Error(`unexpected SOP Instance UID ${original}`);
  const sop = `${original.slice(0, -4)}${1000 + k}`;
  const fd = fs.openSync(file, 'r+');
  try {
    const head = Buffer.alloc(info.pixelOffset);
    fs.readSync(fd, head, 0, head.length, 0);
    const needle = Buffer.from(original, 'latin1');
    const at: number[] = [];
    for (let i = head.indexOf(needle); i >= 0; i = head.indexOf(needle, i + 1)) at.push(i);
    // (0002,0003) Media Storage SOP Instance UID and (0008,0018) SOP Instance UID, nothing else.
    if (at.length !== 2) throw new Error(`the large instance's header holds its SOP Instance UID ${at.length} times, expected 2`);
    const repl = Buffer.from(sop, 'latin1');
    for (const i of at) fs.writeSync(fd, repl, 0, repl.length, i);
  } finally {
    fs.closeSync(fd);
  }
  return { ...info, sopInstanceUid: sop };
}

/** The large study's UID (from the corpus header writeLargeInstance uses). */
export function largeStudyUid(): string {
  const tag = el('StudyInstanceUID', '').tag;
  return String(ctHeader({ patient: 0, study: 0, series: 0, slice: 0, index: 0 }).find((e) => e.tag === tag)!.value);
}

/** POST a file to Orthanc's REST /instances, streamed from disk (the bench never holds it). */
export function uploadFile(httpUrl: string, file: string, timeoutMs = 600_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const size = fs.statSync(file).size;
    const req = http.request(`${httpUrl}/instances`, { method: 'POST', headers: { 'content-type': 'application/dicom', 'content-length': size } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`Orthanc POST /instances: HTTP ${res.statusCode}: ${body.slice(0, 500)}`))));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`upload of ${file}: no progress for ${timeoutMs} ms`)));
    req.on('error', reject);
    fs.createReadStream(file).on('error', reject).pipe(req);
  });
}
