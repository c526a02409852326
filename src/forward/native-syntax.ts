import { ByteSource } from '../dicom/byte-source';
import { DElement, DItem } from '../dicom/dataset';
import { DicomParseError } from '../dicom/errors';
import { lookup } from '../dicom/dictionary';
import { ITEM, ITEM_DELIMITATION, SEQUENCE_DELIMITATION, UNDEFINED_LENGTH, elementOf, formatTag, isPrivateCreator } from '../dicom/tags';
import { EXPLICIT_LE, IMPLICIT_LE, Syntax, TS } from '../dicom/transfer-syntax';
import { LONG_HEADER_VRS } from '../dicom/vr';
import { elementHeader } from '../dicom/writer';
import type { Instance } from '../dicom/part10';

/**
 * Re-encodes a native (uncompressed) dataset in implicit or explicit VR little endian: the
 * fallback when a C-STORE peer accepts an instance's SOP class but not its own native
 * transfer syntax (explicit VR big endian, deflated, or the other of the two little endian
 * ones). Values are copied byte for byte; only headers change, plus byte order for big endian
 * input (swapped per VR: US/SS/OW/AT by 2, UL/SL/FL/OF/OL by 4, FD/OD/SV/UV/OV by 8).
 * - implicit -> explicit takes each VR from the dictionary, as DCMTK's dcmconv does: US or SS
 *   by Pixel Representation for the "US or SS" attributes, LO for private creators, UN for
 *   unknown (private) elements, whose defined-length value is copied as it is even when it
 *   holds a sequence (undefined length ones are sequences, re-encoded item by item), and UN for
 *   a value too long for a short VR.
 * - sequences keep their defined/undefined form (defined lengths are recomputed); a sequence
 *   hidden in a UN value (its items are implicit VR LE by definition) is copied as it is.
 * - group length elements (gggg,0000) are dropped: their values would no longer be true.
 * Compressed (encapsulated) syntaxes are never converted: that would decode pixel data.
 */

export const NATIVE_SYNTAXES: ReadonlySet<string> = new Set([TS.ImplicitLittle, TS.ExplicitLittle, TS.ExplicitBig, TS.DeflatedExplicitLittle]);
export const LITTLE_ENDIAN_TARGETS = [TS.ExplicitLittle, TS.ImplicitLittle] as const;
export type LittleEndianTarget = (typeof LITTLE_ENDIAN_TARGETS)[number];

const SWAP: Record<string, number> = {
  US: 2, SS: 2, OW: 2, AT: 2, UL: 4, SL: 4, FL: 4, OF: 4, OL: 4, FD: 8, OD: 8, SV: 8, UV: 8, OV: 8,
};

/** The dataset of `instance` (already parsed; deflated data already inflated) in `target`. */
export function convertNativeDataset(instance: Instance, target: LittleEndianTarget): Buffer {
  const ds = instance.dataset;
  if (instance.transferSyntax.encapsulated) {
    throw new DicomParseError('UNSUPPORTED_TRANSFER_SYNTAX', `${instance.transferSyntax.uid} is compressed: not converted`);
  }
  const to = target === TS.ExplicitLittle ? EXPLICIT_LE : IMPLICIT_LE;
  const from = ds.syntax;
  if (from.explicit === to.explicit && from.little === to.little) return Buffer.from(ds.src.slice(ds.start, ds.end));
  const out: Buffer[] = [];
  const pr = ds.elements.find((e) => e.tag === 0x00280103 && e.length === 2);
  const prValue = pr ? ds.src.slice(pr.valueStart, pr.valueStart + 2) : undefined;
  const signed = !!prValue && (from.little ? prValue.readUInt16LE(0) : prValue.readUInt16BE(0)) === 1;
  encodeElements({ src: ds.src, from, to, signed }, ds.elements, out);
  return Buffer.concat(out);
}

interface Ctx {
  src: ByteSource;
  from: Syntax;
  to: Syntax;
  /** Pixel Representation 1: "US or SS" attributes are SS. */
  signed: boolean;
}

function encodeElements(ctx: Ctx, elements: DElement[], out: Buffer[]): number {
  let n = 0;
  for (const el of elements) {
    if (elementOf(el.tag) === 0x0000) continue;
    n += encodeElement(ctx, el, out);
  }
  return n;
}

function push(out: Buffer[], b: Buffer): number {
  out.push(b);
  return b.length;
}

function encodeElement(ctx: Ctx, el: DElement, out: Buffer[]): number {
  const { src, from, to } = ctx;
  const undefinedLength = el.length === UNDEFINED_LENGTH;
  // A sequence hidden in UN (items implicit VR LE whatever the syntax), or a defined-length
  // implicit VR element the dictionary does not know that merely looks like a sequence: copy
  // as it is (an undefined length one can only be a sequence, and is re-encoded as one).
  if (el.items && (el.fileVr === 'UN' || (el.fileVr === null && !lookup(el.tag) && !undefinedLength))) {
    return push(out, elementHeader(el.tag, to.explicit ? 'UN' : 'SQ', el.length, to)) + push(out, Buffer.from(src.slice(el.valueStart, el.end)));
  }
  if (el.items) {
    const body: Buffer[] = [];
    let len = 0;
    for (const item of el.items) len += encodeItem(ctx, item, body);
    if (undefinedLength) len += push(body, rawHeader(SEQUENCE_DELIMITATION, 0));
    let n = push(out, elementHeader(el.tag, 'SQ', undefinedLength ? UNDEFINED_LENGTH : len, to));
    for (const b of body) n += push(out, b);
    return n;
  }
  const vr = outputVr(el, ctx);
  if (el.fragments) {
    if (from.little !== to.little) throw new DicomParseError('UNSUPPORTED_TRANSFER_SYNTAX', `encapsulated ${formatTag(el.tag)} in a big endian dataset`);
    return push(out, elementHeader(el.tag, vr === 'OW' ? 'OW' : 'OB', UNDEFINED_LENGTH, to)) + push(out, Buffer.from(src.slice(el.valueStart, el.end)));
  }
  let value: Buffer = Buffer.from(src.slice(el.valueStart, el.valueStart + el.length));
  if (from.little !== to.little) {
    const unit = SWAP[el.fileVr ?? el.vr] ?? 0;
    if (unit > 1 && value.length % unit === 0) value = swap(value, unit);
  }
  const headerVr = to.explicit && !LONG_HEADER_VRS.has(vr) && value.length > 0xffff ? 'UN' : vr;
  return push(out, elementHeader(el.tag, headerVr, value.length, to)) + (value.length ? push(out, value) : 0);
}

function encodeItem(ctx: Ctx, item: DItem, out: Buffer[]): number {
  const undefinedLength = item.length === UNDEFINED_LENGTH;
  const body: Buffer[] = [];
  let len = encodeElements(ctx, item.elements, body);
  if (undefinedLength) len += push(body, rawHeader(ITEM_DELIMITATION, 0));
  let n = push(out, rawHeader(ITEM, undefinedLength ? UNDEFINED_LENGTH : len));
  for (const b of body) n += push(out, b);
  return n;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const dcmjsDictionary = (require('dcmjs') as { data: { DicomMetaDictionary: { dictionary: Record<string, { vr: string } | undefined> } } }).data.DicomMetaDictionary.dictionary;

/** VR written in the target: as in the file when explicit, else from the dictionary. */
function outputVr(el: DElement, ctx: Ctx): string {
  if (!ctx.to.explicit) return el.vr;
  if (el.fileVr) return el.fileVr;
  if (isPrivateCreator(el.tag)) return 'LO';
  if (ctx.signed && dcmjsDictionary[el.tag.toString(16).toUpperCase().padStart(8, '0')]?.vr === 'xs') return 'SS';
  return el.vr;
}

/** Item/delimiter header, little endian (both targets are little endian). */
function rawHeader(tag: number, length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  b.writeUInt32LE(length >>> 0, 4);
  return b;
}

function swap(b: Buffer, unit: number): Buffer {
  const c = Buffer.from(b);
  if (unit === 2) c.swap16();
  else if (unit === 4) c.swap32();
  else c.swap64();
  return c;
}
