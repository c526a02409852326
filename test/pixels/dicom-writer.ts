/**
 * A tiny Part 10 writer for synthetic test files (not for production: no sequences, no
 * character sets). Enough to produce every pixel layout the decoder must handle.
 */
export const TSU = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  explicitBE: '1.2.840.10008.1.2.2',
  encapsulatedUncompressed: '1.2.840.10008.1.2.1.98',
  rle: '1.2.840.10008.1.2.5',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegExtended: '1.2.840.10008.1.2.4.51',
  jpegLossless: '1.2.840.10008.1.2.4.70',
  jpegLs: '1.2.840.10008.1.2.4.80',
  j2k: '1.2.840.10008.1.2.4.90',
};

export type Value = string | number | number[] | Buffer;
export type Elem = [tag: number, vr: string, value: Value];
export interface Encapsulated {
  bot: number[];
  fragments: Buffer[];
}

const LONG_VR = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT']);

function valueBytes(vr: string, v: Value, be: boolean): Buffer {
  if (Buffer.isBuffer(v)) return v.length % 2 ? Buffer.concat([v, Buffer.alloc(1)]) : v;
  if (typeof v === 'string') {
    const pad = vr === 'UI' ? '\0' : ' ';
    return Buffer.from(v.length % 2 ? v + pad : v, 'latin1');
  }
  const nums = Array.isArray(v) ? v : [v];
  const size = vr === 'UL' || vr === 'SL' ? 4 : 2;
  const b = Buffer.alloc(nums.length * size);
  nums.forEach((n, i) => {
    const o = i * size;
    if (size === 2) {
      if (vr === 'SS') be ? b.writeInt16BE(n, o) : b.writeInt16LE(n, o);
      else be ? b.writeUInt16BE(n, o) : b.writeUInt16LE(n, o);
    } else if (vr === 'SL') be ? b.writeInt32BE(n, o) : b.writeInt32LE(n, o);
    else be ? b.writeUInt32BE(n, o) : b.writeUInt32LE(n, o);
  });
  return b;
}

function header(tag: number, vr: string, length: number, mode: 'explicitLE' | 'explicitBE' | 'implicitLE'): Buffer {
  const be = mode === 'explicitBE';
  const g = tag >>> 16;
  const e = tag & 0xffff;
  const u16 = (b: Buffer, n: number, o: number) => (be ? b.writeUInt16BE(n, o) : b.writeUInt16LE(n, o));
  const u32 = (b: Buffer, n: number, o: number) => (be ? b.writeUInt32BE(n >>> 0, o) : b.writeUInt32LE(n >>> 0, o));
  if (mode === 'implicitLE') {
    const b = Buffer.alloc(8);
    u16(b, g, 0);
    u16(b, e, 2);
    u32(b, length, 4);
    return b;
  }
  if (LONG_VR.has(vr)) {
    const b = Buffer.alloc(12);
    u16(b, g, 0);
    u16(b, e, 2);
    b.write(vr, 4, 'latin1');
    u32(b, length, 8);
    return b;
  }
  const b = Buffer.alloc(8);
  u16(b, g, 0);
  u16(b, e, 2);
  b.write(vr, 4, 'latin1');
  u16(b, length, 6);
  return b;
}

function item(tag: number, data: Buffer, be: boolean): Buffer {
  const h = Buffer.alloc(8);
  if (be) {
    h.writeUInt16BE(0xfffe, 0);
    h.writeUInt16BE(tag, 2);
    h.writeUInt32BE(data.length, 4);
  } else {
    h.writeUInt16LE(0xfffe, 0);
    h.writeUInt16LE(tag, 2);
    h.writeUInt32LE(data.length, 4);
  }
  return Buffer.concat([h, data]);
}

export function encodeElements(elems: Elem[], mode: 'explicitLE' | 'explicitBE' | 'implicitLE'): Buffer {
  const be = mode === 'explicitBE';
  const sorted = [...elems].sort((a, b) => a[0] - b[0]);
  return Buffer.concat(
    sorted.flatMap(([tag, vr, v]) => {
      const data = valueBytes(vr, v, be);
      return [header(tag, vr, data.length, mode), data];
    }),
  );
}

export function encodeEncapsulated(px: Encapsulated, vr = 'OB'): Buffer {
  const bot = Buffer.alloc(px.bot.length * 4);
  px.bot.forEach((o, i) => bot.writeUInt32LE(o, i * 4));
  const parts = [header(0x7fe00010, vr, 0xffffffff, 'explicitLE'), item(0xe000, bot, false)];
  for (const f of px.fragments) parts.push(item(0xe000, f.length % 2 ? Buffer.concat([f, Buffer.alloc(1)]) : f, false));
  parts.push(item(0xe0dd, Buffer.alloc(0), false));
  return Buffer.concat(parts);
}

/** Part 10 file: preamble, DICM, meta group (explicit LE), then the data set. */
export function buildPart10(ts: string, elems: Elem[], encapsulated?: Encapsulated): Buffer {
  const meta = encodeElements(
    [
      [0x00020001, 'OB', Buffer.from([0, 1])],
      [0x00020002, 'UI', '1.2.840.10008.5.1.4.1.1.7'],
      [0x00020003, 'UI', '1.2.826.0.1.3680043.10.543.1'],
      [0x00020010, 'UI', ts],
      [0x00020012, 'UI', '1.2.826.0.1.3680043.10.543'],
    ],
    'explicitLE',
  );
  const groupLength = encodeElements([[0x00020000, 'UL', meta.length]], 'explicitLE');
  const mode = ts === TSU.implicitLE ? 'implicitLE' : ts === TSU.explicitBE ? 'explicitBE' : 'explicitLE';
  const body = encodeElements(elems, mode);
  const parts = [Buffer.alloc(128), Buffer.from('DICM', 'latin1'), groupLength, meta, body];
  if (encapsulated) parts.push(encodeEncapsulated(encapsulated));
  return Buffer.concat(parts);
}

export interface ImageAttrs {
  rows: number;
  cols: number;
  frames?: number;
  spp?: number;
  ba: number;
  bs?: number;
  pr?: number;
  pi?: string;
  pc?: number;
  /** Float / Double Float Pixel Data: no BitsStored, HighBit, PixelRepresentation. */
  float?: boolean;
}

/** Image Pixel module elements (plus SOP identification so pydicom is happy). */
export function imageElements(a: ImageAttrs): Elem[] {
  const spp = a.spp ?? 1;
  const e: Elem[] = [
    [0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.7'],
    [0x00080018, 'UI', '1.2.826.0.1.3680043.10.543.1'],
    [0x00280002, 'US', spp],
    [0x00280004, 'CS', a.pi ?? (spp === 3 ? 'RGB' : 'MONOCHROME2')],
    [0x00280010, 'US', a.rows],
    [0x00280011, 'US', a.cols],
    [0x00280100, 'US', a.ba],
  ];
  if (!a.float) {
    const bs = a.bs ?? a.ba;
    e.push([0x00280101, 'US', bs], [0x00280102, 'US', bs - 1], [0x00280103, 'US', a.pr ?? 0]);
  }
  if (a.frames !== undefined) e.push([0x00280008, 'IS', String(a.frames)]);
  if (spp > 1) e.push([0x00280006, 'US', a.pc ?? 0]);
  return e;
}
