/**
 * Tiny, explicit DICOM encoder for building test inputs.
 *
 * Written independently of the engine under test (src/**) on purpose: tests must never
 * check the engine with its own code. Nothing here parses DICOM; it only writes bytes,
 * exactly as told, so tests can also build deliberately odd (but well-formed) files.
 *
 * Conventions:
 *  - `tag` is a number 0xGGGGEEEE.
 *  - `value` string: text for string VRs (UTF-8 encoded; pass a Buffer for other character
 *    sets), or a backslash-joined list. Padded to even length (UI with NUL, others with space).
 *  - `value` number[]: binary numbers for US/SS/UL/SL/FL/FD/SV/UV/AT/OW/OF/OD/OL/OV/OB,
 *    joined with "\" for DS/IS. AT takes 32-bit tags.
 *  - `value` Buffer: raw bytes, given in LITTLE-endian order; swapped per word for
 *    explicit VR big endian (OW/US/SS by 2, OF/OL/UL/SL/FL by 4, OD/OV/FD/SV/UV by 8).
 *    Buffers for string VRs are padded like strings.
 *  - `value` Item[]: a sequence (SQ), or for VR 'UN' a sequence whose items are encoded
 *    in Implicit VR Little Endian whatever the transfer syntax (PS3.5 6.2.2).
 *  - `fragments`: encapsulated pixel data (Basic Offset Table item + one item per fragment).
 */
import * as zlib from 'node:zlib';
import { DICTIONARY_SUPPLEMENT } from '../../src/dicom/dictionary-supplement';

export interface Item {
  elements: El[];
  undefinedLength?: boolean;
}

export interface El {
  tag: number;
  vr: string;
  value: string | Buffer | number[] | Item[];
  undefinedLength?: boolean;
  /** Encapsulated pixel data: with vr OB, written as undefined length BOT + fragment items. */
  fragments?: Buffer[];
  /** Basic Offset Table for `fragments`; default: empty BOT item. */
  offsetTable?: number[];
}

export type Syntax = 'implicitLE' | 'explicitLE' | 'explicitBE' | 'deflatedLE';

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  explicitBE: '1.2.840.10008.1.2.2',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  rleLossless: '1.2.840.10008.1.2.5',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
} as const;

export const SOP_CLASS = {
  mrImage: '1.2.840.10008.5.1.4.1.1.4',
  ctImage: '1.2.840.10008.5.1.4.1.1.2',
} as const;

/** Our own (test-only) implementation class UID; clearly not a real product's. */
export const IMPLEMENTATION_CLASS_UID = '1.2.826.0.1.3680043.9.7777.1';

/** Syntax used to encode a body for a transfer syntax UID (encapsulated ones are explicit LE). */
export function syntaxOf(tsUid: string): Syntax {
  if (tsUid === TS.implicitLE) return 'implicitLE';
  if (tsUid === TS.explicitBE) return 'explicitBE';
  if (tsUid === TS.deflatedLE) return 'deflatedLE';
  return 'explicitLE';
}

// ---------------------------------------------------------------- dictionary (dcmjs)

interface DictEntry { tag: string; vr: string; name: string }
const dcmjsDict: { dictionary: Record<string, DictEntry | undefined>; nameMap: Record<string, DictEntry | undefined> } =
  require('dcmjs').data.DicomMetaDictionary;

/**
 * Attributes of PS3.15 2026d Table E.1-1 that the dcmjs 0.52.2 dictionary does not know yet
 * (added to PS3.6 in 2024-2026). VRs as published in PS3.6.
 */
const SUPPLEMENT = DICTIONARY_SUPPLEMENT;

export function tagString(tag: number): string {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

/** Tag for a PS3.6 keyword (retired keywords too, with or without dcmjs' RETIRED_ prefix). */
export function tagOf(keyword: string): number {
  const e = dcmjsDict.nameMap[keyword] ?? dcmjsDict.nameMap['RETIRED_' + keyword];
  let t = e?.tag;
  if (!t) t = Object.keys(SUPPLEMENT).find((k) => SUPPLEMENT[k].keyword === keyword);
  if (!t) throw new Error(`tagOf: unknown keyword ${keyword}`);
  return parseInt(t.slice(1, 5) + t.slice(6, 10), 16) >>> 0;
}

/**
 * VR of a standard tag. dcmjs' pseudo-VRs are resolved to one concrete VR
 * ('ox' OB-or-OW -> OW, 'xs' US-or-SS -> US, 'lt' LUT data -> OW, 'up' -> UL).
 * Private tags: creators (gggg,00xx) are LO, anything else UN.
 */
export function vrOf(tag: number): string {
  const group = tag >>> 16;
  const elem = tag & 0xffff;
  if (group & 1) return elem >= 0x10 && elem <= 0xff ? 'LO' : 'UN';
  if (tag >>> 0 === 0xfffee000 || tag >>> 0 === 0xfffee00d || tag >>> 0 === 0xfffee0dd) return 'NONE';
  const key = tagString(tag);
  const vr = SUPPLEMENT[key]?.vr ?? dcmjsDict.dictionary[key]?.vr;
  if (!vr) throw new Error(`vrOf: unknown tag ${key}`);
  return ({ ox: 'OW', xs: 'US', lt: 'OW', up: 'UL', na: 'NONE' } as Record<string, string>)[vr] ?? vr;
}

/** Element from a keyword (VR from the dictionary unless given). */
export function el(keyword: string, value: El['value'], vr?: string): El {
  const tag = tagOf(keyword);
  return { tag, vr: vr ?? vrOf(tag), value };
}

/** Sequence element from a keyword; each argument is the element list of one item. */
export function seq(keyword: string, ...items: El[][]): El {
  return el(keyword, items.map((elements) => ({ elements })), 'SQ');
}

// ---------------------------------------------------------------- encoding

const LONG_LENGTH_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const STRING_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT']);
/** Byte size of one binary number, per VR (also the BE swap unit). */
const WORD: Record<string, number> = {
  US: 2, SS: 2, OW: 2, AT: 2, UL: 4, SL: 4, FL: 4, OF: 4, OL: 4, FD: 8, OD: 8, SV: 8, UV: 8, OV: 8, OB: 1, UN: 1,
};
const UNDEFINED = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_DELIM = 0xfffee00d;
const SEQ_DELIM = 0xfffee0dd;

interface Enc { explicit: boolean; big: boolean }
const IMPLICIT_LE: Enc = { explicit: false, big: false };

export interface EncodeOptions {
  /** Sort elements by tag (default true; DICOM requires ascending order). */
  sort?: boolean;
}

function u16(n: number, big: boolean): Buffer {
  const b = Buffer.alloc(2);
  if (big) b.writeUInt16BE(n & 0xffff); else b.writeUInt16LE(n & 0xffff);
  return b;
}
function u32(n: number, big: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (big) b.writeUInt32BE(n >>> 0); else b.writeUInt32LE(n >>> 0);
  return b;
}
function tagBytes(tag: number, big: boolean): Buffer {
  return Buffer.concat([u16(tag >>> 16, big), u16(tag & 0xffff, big)]);
}

function swap(buf: Buffer, word: number): Buffer {
  const out = Buffer.from(buf);
  if (word === 2) out.swap16(); else if (word === 4) out.swap32(); else if (word === 8) out.swap64();
  return out;
}

function binaryNumbers(vr: string, nums: number[], big: boolean): Buffer {
  if (vr === 'AT') return Buffer.concat(nums.map((t) => tagBytes(t, big)));
  const w = WORD[vr];
  if (!w) throw new Error(`cannot encode numbers as ${vr}`);
  const b = Buffer.alloc(w * nums.length);
  nums.forEach((n, i) => {
    const o = i * w;
    switch (vr) {
      case 'OB': case 'UN': b.writeUInt8(n & 0xff, o); break;
      case 'US': case 'OW': big ? b.writeUInt16BE(n, o) : b.writeUInt16LE(n, o); break;
      case 'SS': big ? b.writeInt16BE(n, o) : b.writeInt16LE(n, o); break;
      case 'UL': case 'OL': big ? b.writeUInt32BE(n, o) : b.writeUInt32LE(n, o); break;
      case 'SL': big ? b.writeInt32BE(n, o) : b.writeInt32LE(n, o); break;
      case 'FL': case 'OF': big ? b.writeFloatBE(n, o) : b.writeFloatLE(n, o); break;
      case 'FD': case 'OD': big ? b.writeDoubleBE(n, o) : b.writeDoubleLE(n, o); break;
      case 'SV': big ? b.writeBigInt64BE(BigInt(n), o) : b.writeBigInt64LE(BigInt(n), o); break;
      case 'UV': case 'OV': big ? b.writeBigUInt64BE(BigInt(n), o) : b.writeBigUInt64LE(BigInt(n), o); break;
    }
  });
  return b;
}

/** Value bytes (padded to even length) of a non-sequence element. */
function valueBytes(e: El, enc: Enc): Buffer {
  const v = e.value;
  let bytes: Buffer;
  if (STRING_VRS.has(e.vr)) {
    bytes = Buffer.isBuffer(v) ? v : Buffer.from(Array.isArray(v) ? v.join('\\') : v, 'utf8');
  } else if (Buffer.isBuffer(v)) {
    bytes = enc.big && WORD[e.vr] > 1 ? swap(v, WORD[e.vr]) : v;
  } else if (Array.isArray(v)) {
    bytes = binaryNumbers(e.vr, v as number[], enc.big);
  } else {
    bytes = Buffer.from(v, 'utf8'); // a string for a binary VR: raw text bytes (e.g. OB/UN marker)
  }
  if (bytes.length % 2) bytes = Buffer.concat([bytes, Buffer.from([e.vr === 'UI' || !STRING_VRS.has(e.vr) ? 0 : 0x20])]);
  return bytes;
}

function header(tag: number, vr: string, length: number, enc: Enc): Buffer {
  const t = tagBytes(tag, enc.big);
  if (!enc.explicit || vr === 'NONE') return Buffer.concat([t, u32(length, enc.big)]);
  if (LONG_LENGTH_VRS.has(vr)) return Buffer.concat([t, Buffer.from(vr, 'latin1'), Buffer.alloc(2), u32(length, enc.big)]);
  if (length > 0xffff) throw new Error(`${tagString(tag)} ${vr}: value too long (${length}) for a 16-bit length`);
  return Buffer.concat([t, Buffer.from(vr, 'latin1'), u16(length, enc.big)]);
}

function encodeItems(items: Item[], enc: Enc, opts: EncodeOptions): Buffer {
  return Buffer.concat(items.map((it) => {
    const body = encodeElements(it.elements, enc, opts);
    return it.undefinedLength
      ? Buffer.concat([header(ITEM, 'NONE', UNDEFINED, enc), body, header(ITEM_DELIM, 'NONE', 0, enc)])
      : Buffer.concat([header(ITEM, 'NONE', body.length, enc), body]);
  }));
}

function encodeElement(e: El, enc: Enc, opts: EncodeOptions): Buffer {
  if (e.fragments) {
    // Encapsulated pixel data (PS3.5 A.4): always undefined length, items hold raw bytes.
    const bot = binaryNumbers('UL', e.offsetTable ?? [], enc.big);
    const frag = (b: Buffer) => {
      const p = b.length % 2 ? Buffer.concat([b, Buffer.alloc(1)]) : b;
      return Buffer.concat([header(ITEM, 'NONE', p.length, enc), p]);
    };
    return Buffer.concat([header(e.tag, e.vr, UNDEFINED, enc), frag(bot), ...e.fragments.map(frag),
      header(SEQ_DELIM, 'NONE', 0, enc)]);
  }
  const v = e.value;
  if (Array.isArray(v) && (e.vr === 'SQ' || e.vr === 'UN') && (v.length === 0 || typeof v[0] === 'object')) {
    // UN holding a sequence: its content is Implicit VR Little Endian (PS3.5 6.2.2).
    const inner = e.vr === 'UN' ? IMPLICIT_LE : enc;
    const body = encodeItems(v as Item[], inner, opts);
    if (e.undefinedLength) {
      return Buffer.concat([header(e.tag, e.vr, UNDEFINED, enc), body, header(SEQ_DELIM, 'NONE', 0, inner)]);
    }
    return Buffer.concat([header(e.tag, e.vr, body.length, enc), body]);
  }
  const bytes = valueBytes(e, enc);
  return Buffer.concat([header(e.tag, e.vr, bytes.length, enc), bytes]);
}

function encodeElements(elements: El[], enc: Enc, opts: EncodeOptions): Buffer {
  const list = opts.sort === false ? elements : [...elements].sort((a, b) => (a.tag >>> 0) - (b.tag >>> 0));
  return Buffer.concat(list.map((e) => encodeElement(e, enc, opts)));
}

/** Encode a bare data set (no preamble, no meta). Deflated: raw deflate of explicit LE, padded to even. */
export function encodeDataset(elements: El[], syntax: Syntax, opts: EncodeOptions = {}): Buffer {
  const enc: Enc = { explicit: syntax !== 'implicitLE', big: syntax === 'explicitBE' };
  const body = encodeElements(elements, enc, opts);
  if (syntax !== 'deflatedLE') return body;
  const z = zlib.deflateRawSync(body);
  return z.length % 2 ? Buffer.concat([z, Buffer.alloc(1)]) : z;
}

export interface FileOptions extends EncodeOptions {
  /** Transfer syntax UID written in the meta; default explicit VR LE. */
  transferSyntaxUID?: string;
  /** Encoding of the body; default derived from transferSyntaxUID. */
  syntax?: Syntax;
  /** Extra or overriding meta elements (group 0002); group length is always computed. */
  meta?: El[];
  /** Default: copied from SOPClassUID / SOPInstanceUID of the data set. */
  mediaStorageSOPClassUID?: string;
  mediaStorageSOPInstanceUID?: string;
}

function findString(elements: El[], tag: number): string {
  const e = elements.find((x) => x.tag === tag);
  return e ? (Buffer.isBuffer(e.value) ? e.value.toString('latin1') : String(e.value)) : '';
}

/** Encode the file meta information group (explicit VR LE, group length computed). */
export function encodeMeta(elements: El[], opts: FileOptions = {}): Buffer {
  const ts = opts.transferSyntaxUID ?? (opts.syntax ? TS[opts.syntax] : TS.explicitLE);
  const meta = new Map<number, El>();
  const put = (e: El) => meta.set(e.tag, e);
  put({ tag: 0x00020001, vr: 'OB', value: Buffer.from([0, 1]) });
  put({ tag: 0x00020002, vr: 'UI', value: opts.mediaStorageSOPClassUID ?? findString(elements, 0x00080016) });
  put({ tag: 0x00020003, vr: 'UI', value: opts.mediaStorageSOPInstanceUID ?? findString(elements, 0x00080018) });
  put({ tag: 0x00020010, vr: 'UI', value: ts });
  put({ tag: 0x00020012, vr: 'UI', value: IMPLEMENTATION_CLASS_UID });
  put({ tag: 0x00020013, vr: 'SH', value: 'DEID_TEST_BLD' });
  for (const e of opts.meta ?? []) put(e);
  meta.delete(0x00020000);
  const body = encodeElements([...meta.values()], { explicit: true, big: false }, {});
  const glen = encodeElement({ tag: 0x00020000, vr: 'UL', value: [body.length] }, { explicit: true, big: false }, {});
  return Buffer.concat([glen, body]);
}

/** Part 10 file: 128-byte preamble, "DICM", meta group, body in the chosen transfer syntax. */
export function encodeFile(elements: El[], opts: FileOptions = {}): Buffer {
  const ts = opts.transferSyntaxUID ?? (opts.syntax ? TS[opts.syntax] : TS.explicitLE);
  const syntax = opts.syntax ?? syntaxOf(ts);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'),
    encodeMeta(elements, { ...opts, transferSyntaxUID: ts }), encodeDataset(elements, syntax, opts)]);
}

// ---------------------------------------------------------------- images

/**
 * RLE Lossless encoding of one frame (PS3.5 Annex G), literal runs only: valid, simple,
 * and decodable by any conformant reader. `bytesPerSample` 1 or 2, one sample per pixel.
 */
export function rleEncodeFrame(pixels: Buffer, bytesPerSample: number): Buffer {
  const n = pixels.length / bytesPerSample;
  const segments: Buffer[] = [];
  // Segment 1 holds the most significant byte of each sample.
  for (let s = bytesPerSample - 1; s >= 0; s--) {
    const plane = Buffer.alloc(n);
    for (let i = 0; i < n; i++) plane[i] = pixels[i * bytesPerSample + s];
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i += 128) {
      const chunk = plane.subarray(i, Math.min(n, i + 128));
      parts.push(Buffer.from([chunk.length - 1]), chunk);
    }
    let seg = Buffer.concat(parts);
    if (seg.length % 2) seg = Buffer.concat([seg, Buffer.alloc(1)]);
    segments.push(seg);
  }
  const headerBuf = Buffer.alloc(64);
  headerBuf.writeUInt32LE(segments.length, 0);
  let off = 64;
  segments.forEach((seg, i) => { headerBuf.writeUInt32LE(off, 4 + 4 * i); off += seg.length; });
  return Buffer.concat([headerBuf, ...segments]);
}

export interface ImageOptions {
  modality?: 'MR' | 'CT';
  rows?: number;
  cols?: number;
  /** Bits allocated: 8 or 16 (16 stores 12 bits). */
  bits?: 8 | 16;
  frames?: number;
  /** Transfer syntax UID; RLE Lossless gets real RLE fragments, other encapsulated ones are not supported. */
  ts?: string;
  /** Elements added to (or replacing, same tag) the generated ones. */
  extra?: El[];
}

/**
 * Deterministic pixel pattern, little endian. 16-bit values stay below 0x1000 (12 bits
 * stored), so the high byte of every sample is < 0x10: pixel bytes can never form two
 * printable ASCII characters in a row and be mistaken for a text marker.
 */
export function pixelPattern(rows: number, cols: number, bits: 8 | 16, frames = 1): Buffer {
  const bps = bits / 8;
  const max = bits === 16 ? 0x1000 : 0x100;
  const b = Buffer.alloc(rows * cols * frames * bps);
  let i = 0;
  for (let f = 0; f < frames; f++) {
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++, i++) {
        const v = (x * 37 + y * 101 + f * 211) % max;
        if (bps === 2) b.writeUInt16LE(v, i * 2); else b[i] = v;
      }
    }
  }
  return b;
}

/** Element list of a minimal valid single- (or multi-) frame MR or CT image. */
export function makeImageDataset(o: ImageOptions = {}): El[] {
  const modality = o.modality ?? 'MR';
  const rows = o.rows ?? 8, cols = o.cols ?? 8, bits = o.bits ?? 16, frames = o.frames ?? 1;
  const ts = o.ts ?? TS.explicitLE;
  const root = IMPLEMENTATION_CLASS_UID.replace(/\.1$/, '');
  const pixels = pixelPattern(rows, cols, bits, frames);
  const elements: El[] = [
    el('SpecificCharacterSet', 'ISO_IR 100'),
    el('ImageType', modality === 'CT' ? 'ORIGINAL\\PRIMARY\\AXIAL' : 'ORIGINAL\\PRIMARY\\OTHER'),
    el('SOPClassUID', modality === 'CT' ? SOP_CLASS.ctImage : SOP_CLASS.mrImage),
    el('SOPInstanceUID', `${root}.2.1`),
    el('StudyDate', '20200101'), el('StudyTime', '120000'),
    el('ContentDate', '20200101'), el('ContentTime', '120000'),
    el('AccessionNumber', ''), el('Modality', modality), el('Manufacturer', ''),
    el('ReferringPhysicianName', ''),
    el('PatientName', 'TEST^IMAGE'), el('PatientID', 'TEST0001'), el('PatientBirthDate', ''), el('PatientSex', 'O'),
    el('SliceThickness', '1'), el('PatientPosition', 'HFS'), el('BodyPartExamined', 'HEAD'),
    el('StudyInstanceUID', `${root}.3.1`), el('SeriesInstanceUID', `${root}.4.1`),
    el('StudyID', '1'), el('SeriesNumber', '1'), el('AcquisitionNumber', '1'), el('InstanceNumber', '1'),
    el('ImagePositionPatient', '0\\0\\0'), el('ImageOrientationPatient', '1\\0\\0\\0\\1\\0'),
    el('FrameOfReferenceUID', `${root}.5.1`), el('PositionReferenceIndicator', ''),
    el('SamplesPerPixel', [1]), el('PhotometricInterpretation', 'MONOCHROME2'),
    el('Rows', [rows]), el('Columns', [cols]), el('PixelSpacing', '1\\1'),
    el('BitsAllocated', [bits]), el('BitsStored', [bits === 16 ? 12 : 8]), el('HighBit', [bits === 16 ? 11 : 7]),
    el('PixelRepresentation', [0]),
  ];
  if (frames > 1) elements.push(el('NumberOfFrames', String(frames)));
  if (modality === 'CT') {
    elements.push(el('KVP', ''), el('RescaleIntercept', '0'), el('RescaleSlope', '1'));
  } else {
    elements.push(el('ScanningSequence', 'SE'), el('SequenceVariant', 'NONE'), el('ScanOptions', ''),
      el('MRAcquisitionType', '2D'), el('RepetitionTime', '500'), el('EchoTime', '20'), el('EchoTrainLength', '1'),
      el('ImagedNucleus', '1H'), el('MagneticFieldStrength', '1.5'));
  }
  const frameBytes = pixels.length / frames;
  if (ts === TS.rleLossless) {
    const fr = Array.from({ length: frames }, (_, f) => rleEncodeFrame(pixels.subarray(f * frameBytes, (f + 1) * frameBytes), bits / 8));
    elements.push({ tag: 0x7fe00010, vr: 'OB', value: Buffer.alloc(0), fragments: fr });
  } else if (ts === TS.implicitLE || ts === TS.explicitLE || ts === TS.explicitBE || ts === TS.deflatedLE) {
    elements.push({ tag: 0x7fe00010, vr: bits === 16 ? 'OW' : 'OB', value: pixels });
  } else {
    throw new Error(`makeImage: no encoder for transfer syntax ${ts}`);
  }
  const byTag = new Map(elements.map((e) => [e.tag, e] as const));
  for (const e of o.extra ?? []) byTag.set(e.tag, e);
  return [...byTag.values()];
}

/** Part 10 file of a minimal valid MR (default) or CT image in transfer syntax `ts`. */
export function makeImage(o: ImageOptions = {}): Buffer {
  const ts = o.ts ?? TS.explicitLE;
  return encodeFile(makeImageDataset(o), { transferSyntaxUID: ts });
}
