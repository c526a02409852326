import { ByteSource } from './byte-source';
import { DicomParseError } from './errors';
import { ITEM, ITEM_DELIMITATION, SEQUENCE_DELIMITATION, Tag, UNDEFINED_LENGTH, formatTag } from './tags';
import { Syntax } from './transfer-syntax';
import { LONG_HEADER_VRS } from './vr';

/** What the output dataset is made of: untouched input ranges and newly encoded elements. */
export type OutNode =
  | { kind: 'copy'; tag: Tag; src: ByteSource; start: number; end: number }
  | { kind: 'value'; tag: Tag; vr: string; value: Buffer }
  | { kind: 'sequence'; tag: Tag; headerVr: string; undefinedLength: boolean; itemSyntax: Syntax; items: OutItem[] };

export type OutItem =
  | { kind: 'copy'; src: ByteSource; start: number; end: number }
  | { kind: 'item'; undefinedLength: boolean; nodes: OutNode[] };

/** An output byte range: a buffer, or a range of an input to copy (possibly never loaded). */
export type Part = Buffer | { src: ByteSource; start: number; end: number };

export const partLength = (p: Part): number => (Buffer.isBuffer(p) ? p.length : p.end - p.start);

/** Encodes nodes (sorted by the caller) into parts; untouched neighbours merge into one range. */
export function encodeNodes(nodes: OutNode[], syntax: Syntax): { parts: Part[]; length: number } {
  const out = new PartList();
  for (const node of nodes) encodeNode(node, syntax, out);
  return { parts: out.parts, length: out.length };
}

function encodeNode(node: OutNode, syntax: Syntax, out: PartList): void {
  if (node.kind === 'copy') return out.range(node.src, node.start, node.end);
  if (node.kind === 'value') {
    out.buffer(elementHeader(node.tag, node.vr, node.value.length, syntax));
    if (node.value.length) out.buffer(node.value);
    return;
  }
  const body = new PartList();
  for (const item of node.items) {
    if (item.kind === 'copy') {
      body.range(item.src, item.start, item.end);
      continue;
    }
    const inner = encodeNodes(item.nodes, node.itemSyntax);
    body.buffer(rawHeader(ITEM, item.undefinedLength ? UNDEFINED_LENGTH : inner.length, node.itemSyntax));
    body.append(inner.parts);
    if (item.undefinedLength) body.buffer(rawHeader(ITEM_DELIMITATION, 0, node.itemSyntax));
  }
  if (node.undefinedLength) body.buffer(rawHeader(SEQUENCE_DELIMITATION, 0, node.itemSyntax));
  out.buffer(elementHeader(node.tag, node.headerVr, node.undefinedLength ? UNDEFINED_LENGTH : body.length, syntax));
  out.append(body.parts);
}

/** Header of a data element in the given syntax. */
export function elementHeader(tag: Tag, vr: string, length: number, syntax: Syntax): Buffer {
  if (!syntax.explicit) return rawHeader(tag, length, syntax);
  const long = LONG_HEADER_VRS.has(vr);
  if (!long && length > 0xffff) {
    throw new DicomParseError('VALUE_TOO_LONG', `cannot encode ${length} bytes in a ${vr} element ${formatTag(tag)}`);
  }
  const b = Buffer.alloc(long ? 12 : 8);
  writeTag(b, tag, syntax);
  b.write(vr, 4, 'latin1');
  if (long) {
    if (syntax.little) b.writeUInt32LE(length, 8);
    else b.writeUInt32BE(length, 8);
  } else if (syntax.little) b.writeUInt16LE(length, 6);
  else b.writeUInt16BE(length, 6);
  return b;
}

/** Tag + 32-bit length: implicit VR elements, items and delimiters. */
function rawHeader(tag: Tag, length: number, syntax: Syntax): Buffer {
  const b = Buffer.alloc(8);
  writeTag(b, tag, syntax);
  if (syntax.little) b.writeUInt32LE(length >>> 0, 4);
  else b.writeUInt32BE(length >>> 0, 4);
  return b;
}

function writeTag(b: Buffer, tag: Tag, syntax: Syntax): void {
  if (syntax.little) {
    b.writeUInt16LE(tag >>> 16, 0);
    b.writeUInt16LE(tag & 0xffff, 2);
  } else {
    b.writeUInt16BE(tag >>> 16, 0);
    b.writeUInt16BE(tag & 0xffff, 2);
  }
}

class PartList {
  parts: Part[] = [];
  length = 0;
  buffer(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  range(src: ByteSource, start: number, end: number): void {
    const last = this.parts[this.parts.length - 1];
    if (last && !Buffer.isBuffer(last) && last.src === src && last.end === start) last.end = end;
    else this.parts.push({ src, start, end });
    this.length += end - start;
  }
  append(parts: Part[]): void {
    for (const p of parts) {
      if (Buffer.isBuffer(p)) this.buffer(p);
      else this.range(p.src, p.start, p.end);
    }
  }
}

/** Concatenates parts in memory (only for outputs known to be small). */
export function partsToBuffer(parts: Part[]): Buffer {
  return Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : p.src.slice(p.start, p.end))));
}
