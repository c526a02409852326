/**
 * Shared helpers of the forward tests. Everything that inspects received files is independent
 * of src/: DCMTK dcmdump, or plain byte offsets.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OutgoingInstance } from '../../src/forward/destination';
import { El, el, makeImage, TS } from '../support/dicom-builder';
import { repoRoot, run } from '../support/tools';

export const SAMPLES = path.join(repoRoot(), 'test', 'fixtures', 'samples');
export const sample = (name: string): string => path.join(SAMPLES, name);

export interface Uids {
  sopClassUid: string;
  sopInstanceUid: string;
  studyUid: string;
  seriesUid: string;
  transferSyntaxUid: string;
}

/** The UIDs of a Part 10 file, read with dcmdump. */
export function uidsOf(file: string): Uids {
  const r = run('dcmdump', ['-q', '-s', '-Un', '+P', '0002,0010', '+P', '0008,0016', '+P', '0008,0018', '+P', '0020,000d', '+P', '0020,000e', file]);
  const value = (tag: string): string => {
    const line = r.stdout.split('\n').find((l) => l.startsWith(`(${tag})`));
    const m = line ? /\[([^\]]*)\]/.exec(line) : null;
    if (!m) throw new Error(`uidsOf ${file}: no (${tag}) in\n${r.stdout}${r.stderr}`);
    return m[1];
  };
  return {
    transferSyntaxUid: value('0002,0010'), sopClassUid: value('0008,0016'), sopInstanceUid: value('0008,0018'),
    studyUid: value('0020,000d'), seriesUid: value('0020,000e'),
  };
}

export function outgoing(file: string, over: Partial<OutgoingInstance> = {}): OutgoingInstance & { file: string } {
  return { file, ...uidsOf(file), patientPseudonym: 'ANON-TEST', ...over };
}

/** The dataset bytes of a Part 10 file: after the meta group (its group length at byte 140). */
export function datasetBytes(buf: Buffer): Buffer {
  if (buf.toString('latin1', 128, 132) !== 'DICM' || buf.readUInt32LE(132) !== 0x00000002 || buf.toString('latin1', 136, 138) !== 'UL') {
    throw new Error('datasetBytes: no meta group length');
  }
  return buf.subarray(144 + buf.readUInt32LE(140));
}

/** Bytes from the last (7FE0,0010) tag (little endian) to the end: the Pixel Data element. */
export function pixelDataTail(buf: Buffer): Buffer {
  const at = buf.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
  if (at < 0) throw new Error('no Pixel Data');
  return buf.subarray(at);
}

/** dcmdump of the data set only, without length/encoding annotations and group lengths. */
export function normalisedDump(file: string): string {
  const r = run('dcmdump', ['-q', '+U8', '-M', '+L', file]);
  if (r.status !== 0) throw new Error(`dcmdump ${file}: ${r.stderr}`);
  return r.stdout.split('\n')
    .filter((l) => !/^\s*\(0002,/.test(l) && !/^#|^$/.test(l.trim()) && !/\(fffe,e00d\)|\(fffe,e0dd\)/.test(l) && !/GroupLength/.test(l))
    .map((l) => l.replace(/\s+#.*$/, '').replace(/\((Sequence|Item) with (explicit|undefined) length/, '($1').trimEnd())
    .join('\n');
}

/** Private elements (creator, text, a nested sequence with undefined lengths) for makeImage. */
export function privateElements(text: string): El[] {
  return [
    { tag: 0x00090010, vr: 'LO', value: 'DEIDGW TEST' },
    { tag: 0x00091001, vr: 'LO', value: text },
    { tag: 0x00091002, vr: 'SQ', undefinedLength: true, value: [{ undefinedLength: true, elements: [{ tag: 0x00091003, vr: 'LO', value: `${text} in a sequence` }] }] },
    { tag: 0x00091004, vr: 'OB', value: Buffer.from([1, 2, 3, 4, 5, 6]) },
  ];
}

let counter = 0;

/**
 * Writes a makeImage instance with its own UIDs (2.25.<n>...) and private elements; returns
 * the file and its OutgoingInstance.
 */
export function writeImage(dir: string, o: { ts?: string; study?: string; series?: string; modality?: 'MR' | 'CT'; rows?: number; cols?: number; frames?: number; extra?: El[] } = {}): OutgoingInstance & { file: string } {
  const n = `${process.pid}${Date.now() % 100000}${++counter}`;
  const sop = `2.25.${n}1`;
  const study = o.study ?? `2.25.${n}2`;
  const series = o.series ?? `2.25.${n}3`;
  const ts = o.ts ?? TS.explicitLE;
  const file = path.join(dir, `img-${n}.dcm`);
  fs.writeFileSync(file, makeImage({
    ts, modality: o.modality, rows: o.rows ?? 16, cols: o.cols ?? 16, frames: o.frames,
    extra: [el('SOPInstanceUID', sop), el('StudyInstanceUID', study), el('SeriesInstanceUID', series), ...privateElements(`private ${n}`), ...(o.extra ?? [])],
  }));
  return {
    file, sopClassUid: o.modality === 'CT' ? '1.2.840.10008.5.1.4.1.1.2' : '1.2.840.10008.5.1.4.1.1.4', sopInstanceUid: sop, studyUid: study, seriesUid: series,
    transferSyntaxUid: ts, patientPseudonym: 'ANON-TEST',
  };
}
