/**
 * Minimal PNG reader for tests: non-interlaced greyscale / truecolour, 8 or 16 bit, all five
 * filters, CRCs checked with an independent bitwise CRC-32. Pillow reads 16-bit RGB as 8-bit,
 * so 48-bit PNGs are verified with this instead.
 */
import { inflateSync } from 'node:zlib';

export interface DecodedPng {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  /** Samples in row-major, interleaved order, as unsigned integers. */
  samples: number[];
  text: Record<string, string>;
}

function crcBitwise(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

export function readPng(png: Buffer): DecodedPng {
  if (png.subarray(0, 8).toString('hex') !== '89504e470d0a1a0a') throw new Error('bad signature');
  let p = 8;
  let ihdr: Buffer | undefined;
  const idat: Buffer[] = [];
  const text: Record<string, string> = {};
  let ended = false;
  while (p < png.length) {
    const len = png.readUInt32BE(p);
    const type = png.toString('latin1', p + 4, p + 8);
    const data = png.subarray(p + 8, p + 8 + len);
    const crc = png.readUInt32BE(p + 8 + len);
    if (crc !== crcBitwise(png.subarray(p + 4, p + 8 + len))) throw new Error(`bad CRC in ${type}`);
    if (type === 'IHDR') ihdr = data;
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'tEXt') {
      const z = data.indexOf(0);
      text[data.toString('latin1', 0, z)] = data.toString('latin1', z + 1);
    } else if (type === 'IEND') ended = true;
    p += 12 + len;
  }
  if (!ihdr || !ended) throw new Error('missing IHDR or IEND');
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const depth = ihdr[8];
  const colorType = ihdr[9];
  if (ihdr[12] !== 0) throw new Error('interlaced');
  const channels = colorType === 2 ? 3 : 1;
  const bpp = (channels * depth) / 8;
  const rowBytes = width * bpp;
  const raw = inflateSync(Buffer.concat(idat));
  if (raw.length !== height * (rowBytes + 1)) throw new Error('IDAT size');
  const out = Buffer.alloc(height * rowBytes);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (rowBytes + 1)];
    for (let i = 0; i < rowBytes; i++) {
      const x = raw[y * (rowBytes + 1) + 1 + i];
      const a = i >= bpp ? out[y * rowBytes + i - bpp] : 0;
      const b = y > 0 ? out[(y - 1) * rowBytes + i] : 0;
      const c = i >= bpp && y > 0 ? out[(y - 1) * rowBytes + i - bpp] : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const pp = a + b - c;
        const pa = Math.abs(pp - a);
        const pb = Math.abs(pp - b);
        const pc = Math.abs(pp - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (f !== 0) throw new Error(`filter ${f}`);
      out[y * rowBytes + i] = (x + pred) & 0xff;
    }
  }
  const samples: number[] = [];
  for (let i = 0; i < out.length; i += depth / 8) samples.push(depth === 16 ? out.readUInt16BE(i) : out[i]);
  return { width, height, depth, colorType, samples, text };
}
