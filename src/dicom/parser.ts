import { BufferSource, ByteSource } from './byte-source';
import { DElement, DItem } from './dataset';
import { lookup } from './dictionary';
import { DicomParseError } from './errors';
import { ITEM, ITEM_DELIMITATION, SEQUENCE_DELIMITATION, T, Tag, UNDEFINED_LENGTH, formatTag, isPrivateTag } from './tags';
import { IMPLICIT_LE, Syntax } from './transfer-syntax';
import { LONG_HEADER_VRS, VALID_VRS, maxValueLength } from './vr';

/** Explicit VR by its two bytes (first << 8 | second): the interned name and its header form. */
const VR_BY_CODE = new Map<number, { vr: string; long: boolean }>(
  [...VALID_VRS].map((vr) => [(vr.charCodeAt(0) << 8) | vr.charCodeAt(1), { vr, long: LONG_HEADER_VRS.has(vr) }]),
);

/** Deeper nesting than this is a hostile file (real objects nest fewer than 10 levels). */
export const MAX_DEPTH = 32;

export interface ParseOptions {
  /** Stop (without consuming) at the first element of another group (used for the meta group). */
  onlyGroup?: number;
}

interface Header {
  tag: Tag;
  fileVr: string | null;
  length: number;
  valueStart: number;
}

/**
 * Walks encoded elements from `pos` to `end` and records their byte ranges. Only headers are
 * read; values are located, not copied. Throws DicomParseError for anything malformed.
 */
export function parseElements(
  src: ByteSource,
  pos: number,
  end: number,
  syntax: Syntax,
  depth = 0,
  options: ParseOptions = {},
): { elements: DElement[]; end: number } {
  return new Walker(src).elements(pos, end, syntax, depth, false, options);
}

class Walker {
  /** The whole input when it is in memory: headers are read from it directly (the common case). */
  private readonly whole: Buffer | null;

  constructor(private readonly src: ByteSource) {
    this.whole = src instanceof BufferSource ? src.buffer : null;
  }

  elements(pos: number, end: number, syntax: Syntax, depth: number, inUndefinedItem: boolean, options: ParseOptions = {}): { elements: DElement[]; end: number } {
    if (depth > MAX_DEPTH) throw new DicomParseError('NESTING_TOO_DEEP', `sequences nested deeper than ${MAX_DEPTH} levels`, pos);
    const elements: DElement[] = [];
    while (pos < end) {
      if (options.onlyGroup !== undefined && this.groupAt(pos, end, syntax) !== options.onlyGroup) return { elements, end: pos };
      const h = this.header(pos, end, syntax);
      if (h.tag === ITEM_DELIMITATION) {
        if (!inUndefinedItem) throw new DicomParseError('BAD_ITEM', 'item delimiter outside an item', pos);
        return { elements, end: pos + 8 };
      }
      if (h.tag === ITEM || h.tag === SEQUENCE_DELIMITATION) {
        throw new DicomParseError('BAD_ITEM', `unexpected ${formatTag(h.tag)} among data elements`, pos);
      }
      const el = this.element(pos, h, end, syntax, depth);
      elements.push(el);
      pos = el.end;
    }
    if (inUndefinedItem) throw new DicomParseError('TRUNCATED', 'data ends inside an undefined-length item', pos);
    return { elements, end: pos };
  }

  private groupAt(pos: number, end: number, syntax: Syntax): number {
    if (end - pos < 2) throw new DicomParseError('TRUNCATED', 'data ends inside an element header', pos);
    const [b, o] = this.src.view(pos, 2);
    return syntax.little ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }

  private header(pos: number, end: number, syntax: Syntax): Header {
    if (end - pos < 8) throw new DicomParseError('TRUNCATED', 'data ends inside an element header', pos);
    const w = this.whole;
    // Little endian from the in-memory input: plain byte arithmetic, no view() per header.
    if (w !== null && syntax.little && pos + 12 <= w.length) {
      const group = w[pos] | (w[pos + 1] << 8);
      const tag = ((group << 16) | w[pos + 2] | (w[pos + 3] << 8)) >>> 0;
      if (!syntax.explicit || group === 0xfffe) return { tag, fileVr: null, length: u32le(w, pos + 4), valueStart: pos + 8 };
      const info = VR_BY_CODE.get((w[pos + 4] << 8) | w[pos + 5]);
      if (info === undefined) throw badVr(tag, String.fromCharCode(w[pos + 4], w[pos + 5]), pos);
      if (!info.long) return { tag, fileVr: info.vr, length: w[pos + 6] | (w[pos + 7] << 8), valueStart: pos + 8 };
      if (end - pos < 12) throw new DicomParseError('TRUNCATED', 'data ends inside an element header', pos);
      return { tag, fileVr: info.vr, length: u32le(w, pos + 8), valueStart: pos + 12 };
    }
    const [b, o] = this.src.view(pos, 8);
    const group = syntax.little ? b.readUInt16LE(o) : b.readUInt16BE(o);
    const elem = syntax.little ? b.readUInt16LE(o + 2) : b.readUInt16BE(o + 2);
    const tag = ((group << 16) | elem) >>> 0;
    // Items and delimiters (group FFFE) have no VR even in explicit VR syntaxes.
    if (!syntax.explicit || group === 0xfffe) {
      const length = syntax.little ? b.readUInt32LE(o + 4) : b.readUInt32BE(o + 4);
      return { tag, fileVr: null, length, valueStart: pos + 8 };
    }
    const info = VR_BY_CODE.get((b[o + 4] << 8) | b[o + 5]);
    if (info === undefined) throw badVr(tag, String.fromCharCode(b[o + 4], b[o + 5]), pos);
    if (!info.long) {
      return { tag, fileVr: info.vr, length: syntax.little ? b.readUInt16LE(o + 6) : b.readUInt16BE(o + 6), valueStart: pos + 8 };
    }
    if (end - pos < 12) throw new DicomParseError('TRUNCATED', 'data ends inside an element header', pos);
    const [b2, o2] = this.src.view(pos + 8, 4);
    return { tag, fileVr: info.vr, length: syntax.little ? b2.readUInt32LE(o2) : b2.readUInt32BE(o2), valueStart: pos + 12 };
  }

  private element(pos: number, h: Header, end: number, syntax: Syntax, depth: number): DElement {
    // The dictionary only matters without an explicit VR or for UN (most elements skip it).
    const dictVr = h.fileVr === null || h.fileVr === 'UN' ? lookup(h.tag)?.vr : undefined;
    let vr = h.fileVr ?? dictVr ?? 'UN';
    // A UN the dictionary knows is read with the dictionary's VR (PS3.5 6.2.2).
    if (vr === 'UN' && dictVr && dictVr !== 'UN') vr = dictVr;
    // One object per element, with every field set up front (a stable shape is much faster).
    const base: DElement = { tag: h.tag, vr, fileVr: h.fileVr, start: pos, valueStart: h.valueStart, length: h.length, end: 0 };

    const undefinedLength = h.length === UNDEFINED_LENGTH;
    const hiddenSequence = h.fileVr === null || h.fileVr === 'UN';
    if (vr === 'SQ' || (undefinedLength && hiddenSequence && h.tag !== T.PixelData)) {
      // Sequences hidden in UN, and all implicit VR data, are encoded implicit VR little endian.
      const itemSyntax = h.fileVr === 'SQ' ? syntax : h.fileVr === 'UN' ? IMPLICIT_LE : syntax;
      try {
        const seq = this.sequence(h.valueStart, h.length, end, itemSyntax, depth);
        return Object.assign(base, { vr: 'SQ', items: seq.items, itemSyntax, end: seq.end });
      } catch (err) {
        // A UN that only looked like a sequence stays an opaque UN value.
        if (!(err instanceof DicomParseError) || undefinedLength || vr !== 'SQ' || h.fileVr !== 'UN') throw err;
        base.vr = 'UN';
        return this.plainValue(base, end);
      }
    }
    if (undefinedLength) {
      const enc = this.fragments(h.valueStart, end, syntax);
      return Object.assign(base, { fragments: enc.fragments, end: enc.end });
    }
    // Implicit-VR private sequences: an unknown private value that starts with an item tag.
    if (vr === 'UN' && h.fileVr === null && isPrivateTag(h.tag) && h.length >= 8 && this.startsWithItem(h.valueStart, end)) {
      try {
        const seq = this.sequence(h.valueStart, h.length, end, syntax, depth);
        return Object.assign(base, { vr: 'SQ', items: seq.items, itemSyntax: syntax, end: seq.end });
      } catch (err) {
        if (!(err instanceof DicomParseError)) throw err;
      }
    }
    return this.plainValue(base, end);
  }

  private plainValue(el: DElement, end: number): DElement {
    const valueEnd = el.valueStart + el.length;
    if (valueEnd > end) {
      const code = end >= this.src.size ? 'TRUNCATED' : 'BAD_LENGTH';
      throw new DicomParseError(code, `value of ${formatTag(el.tag)} (${el.length} bytes) runs past the end of its ${end >= this.src.size ? 'file' : 'enclosing item'}`, el.start);
    }
    if (el.length > maxValueLength(el.vr)) {
      throw new DicomParseError('VALUE_TOO_LONG', `${el.vr} value of ${formatTag(el.tag)} is ${el.length} bytes, above the ${maxValueLength(el.vr)}-byte limit for its VR`, el.start);
    }
    el.end = valueEnd;
    return el;
  }

  private startsWithItem(pos: number, end: number): boolean {
    if (end - pos < 4) return false;
    const [b, o] = this.src.view(pos, 4);
    return b.readUInt16LE(o) === 0xfffe && b.readUInt16LE(o + 2) === 0xe000;
  }

  private sequence(valueStart: number, length: number, bound: number, syntax: Syntax, depth: number): { items: DItem[]; end: number } {
    const undefinedLength = length === UNDEFINED_LENGTH;
    const seqEnd = undefinedLength ? bound : valueStart + length;
    if (seqEnd > bound) throw new DicomParseError(bound >= this.src.size ? 'TRUNCATED' : 'BAD_LENGTH', `sequence length ${length} runs past its container`, valueStart);
    const items: DItem[] = [];
    let pos = valueStart;
    for (;;) {
      if (!undefinedLength && pos === seqEnd) return { items, end: seqEnd };
      const h = this.header(pos, seqEnd, { explicit: false, little: syntax.little });
      if (h.tag === SEQUENCE_DELIMITATION) {
        if (!undefinedLength) throw new DicomParseError('BAD_ITEM', 'sequence delimiter in a defined-length sequence', pos);
        return { items, end: pos + 8 };
      }
      if (h.tag !== ITEM) throw new DicomParseError('BAD_ITEM', `expected an item, found ${formatTag(h.tag)}`, pos);
      const itemStart = pos + 8;
      if (h.length === UNDEFINED_LENGTH) {
        const r = this.elements(itemStart, seqEnd, syntax, depth + 1, true);
        items.push({ start: pos, valueStart: itemStart, length: h.length, end: r.end, elements: r.elements });
        pos = r.end;
      } else {
        if (itemStart + h.length > seqEnd) throw new DicomParseError('BAD_LENGTH', `item length ${h.length} runs past its sequence`, pos);
        const r = this.elements(itemStart, itemStart + h.length, syntax, depth + 1, false);
        items.push({ start: pos, valueStart: itemStart, length: h.length, end: itemStart + h.length, elements: r.elements });
        pos = itemStart + h.length;
      }
    }
  }

  private fragments(valueStart: number, bound: number, syntax: Syntax): { fragments: { start: number; length: number }[]; end: number } {
    const fragments: { start: number; length: number }[] = [];
    let pos = valueStart;
    for (;;) {
      const h = this.header(pos, bound, { explicit: false, little: syntax.little });
      if (h.tag === SEQUENCE_DELIMITATION) return { fragments, end: pos + 8 };
      if (h.tag !== ITEM) throw new DicomParseError('BAD_ITEM', `expected a fragment item, found ${formatTag(h.tag)}`, pos);
      if (h.length === UNDEFINED_LENGTH || pos + 8 + h.length > bound) {
        throw new DicomParseError(bound >= this.src.size ? 'TRUNCATED' : 'BAD_LENGTH', `fragment length ${h.length} runs past the data`, pos);
      }
      fragments.push({ start: pos + 8, length: h.length });
      pos += 8 + h.length;
    }
  }
}

const u32le = (b: Buffer, o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;

const badVr = (tag: Tag, vr: string, pos: number): DicomParseError =>
  new DicomParseError('BAD_VR', `element ${formatTag(tag)} has invalid VR ${JSON.stringify(vr)}`, pos);
