/**
 * Synthetic native files for layouts the samples lack. Reference: pydicom 2.3 pixel_array on
 * the same file, except where the test says pydicom 2.3 is knowingly different (sign
 * extension, 8-bit OW in Big Endian) and the expectation is written out by hand from PS3.5.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodePixels, type PixelArray } from '../../src/pixels';
import { buildPart10, imageElements, TSU, type Elem, type ImageAttrs } from './dicom-writer';
import { makeTmpDir, pythonUnavailable, runReference, sha256, type RefResult } from './helpers';

function le(kind: 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64' | 'i8', values: number[], be = false): Buffer {
  const size = { i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, f64: 8 }[kind];
  const b = Buffer.alloc(values.length * size);
  values.forEach((v, i) => {
    const o = i * size;
    const w = {
      i8: () => b.writeInt8(v, o),
      u16: () => (be ? b.writeUInt16BE(v, o) : b.writeUInt16LE(v, o)),
      i16: () => (be ? b.writeInt16BE(v, o) : b.writeInt16LE(v, o)),
      u32: () => (be ? b.writeUInt32BE(v, o) : b.writeUInt32LE(v, o)),
      i32: () => (be ? b.writeInt32BE(v, o) : b.writeInt32LE(v, o)),
      f32: () => (be ? b.writeFloatBE(v, o) : b.writeFloatLE(v, o)),
      f64: () => (be ? b.writeDoubleBE(v, o) : b.writeDoubleLE(v, o)),
    }[kind];
    w();
  });
  return b;
}

const seq = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

function file(ts: string, attrs: ImageAttrs, pixelTag: number, vr: string, data: Buffer): Buffer {
  const elems: Elem[] = [...imageElements(attrs), [pixelTag, vr, data]];
  return buildPart10(ts, elems);
}

interface PyCase {
  name: string;
  bytes: Buffer;
}

// Each of these is compared with pydicom 2.3 pixel_array (dtype, shape, bytes).
const PY_CASES: PyCase[] = [
  {
    name: 'Float Pixel Data (7FE0,0008) -> float32, 2 frames',
    bytes: file(TSU.explicitLE, { rows: 3, cols: 4, frames: 2, ba: 32, float: true }, 0x7fe00008, 'OF',
      le('f32', seq(24, (i) => (i - 7) * 1.25 + (i === 5 ? 1e30 : 0)))),
  },
  {
    name: 'Double Float Pixel Data (7FE0,0009) -> float64',
    bytes: file(TSU.explicitLE, { rows: 2, cols: 3, ba: 64, float: true }, 0x7fe00009, 'OD',
      le('f64', [Math.PI, -0.1, 1e-300, 12345678.9, -2, 0])),
  },
  {
    name: 'Float Pixel Data in Explicit VR Big Endian',
    bytes: file(TSU.explicitBE, { rows: 2, cols: 2, ba: 32, float: true }, 0x7fe00008, 'OF', le('f32', [1.5, -2.25, 3e9, 0], true)),
  },
  {
    name: 'uint32 in Explicit VR Big Endian',
    bytes: file(TSU.explicitBE, { rows: 2, cols: 3, ba: 32, pr: 0 }, 0x7fe00010, 'OW',
      le('u32', [0, 1, 0xdeadbeef, 65536, 0xffffffff, 7], true)),
  },
  {
    name: 'int16 in Explicit VR Big Endian, 2 frames',
    bytes: file(TSU.explicitBE, { rows: 2, cols: 2, frames: 2, ba: 16, pr: 1 }, 0x7fe00010, 'OW',
      le('i16', [-32768, -1, 0, 32767, 1, 2, -3, 4], true)),
  },
  {
    name: 'RGB uint16, PlanarConfiguration 1, 2 frames',
    bytes: file(TSU.explicitLE, { rows: 2, cols: 3, frames: 2, spp: 3, ba: 16, pc: 1 }, 0x7fe00010, 'OW',
      le('u16', seq(36, (i) => i * 1000 + 7))),
  },
  {
    name: 'RGB uint8, PlanarConfiguration 1, implicit VR',
    bytes: file(TSU.implicitLE, { rows: 3, cols: 3, spp: 3, ba: 8, pc: 1 }, 0x7fe00010, 'OB',
      Buffer.from(seq(27, (i) => i * 9))),
  },
  {
    name: 'native YBR_FULL_422 uint8 (Y1 Y2 Cb Cr -> upsampled, not colour converted)',
    bytes: file(TSU.explicitLE, { rows: 2, cols: 4, frames: 2, spp: 3, ba: 8, pi: 'YBR_FULL_422' }, 0x7fe00010, 'OB',
      Buffer.from(seq(32, (i) => (i * 37) % 256))),
  },
  {
    name: 'BitsAllocated 1, 3 frames of 3x5 (frames not byte aligned)',
    bytes: file(TSU.explicitLE, { rows: 3, cols: 5, frames: 3, ba: 1 }, 0x7fe00010, 'OB',
      Buffer.from([0b10110010, 0b01011101, 0b11100011, 0b00011111, 0b10101010, 0b00000111])),
  },
  {
    name: 'int8 (BitsAllocated 8, PixelRepresentation 1)',
    bytes: file(TSU.explicitLE, { rows: 2, cols: 3, ba: 8, pr: 1 }, 0x7fe00010, 'OB', le('i8', [-128, -1, 0, 1, 127, -50])),
  },
  {
    name: 'int16 BitsStored 12 already sign-extended (pydicom 2.3 and we agree)',
    bytes: file(TSU.explicitLE, { rows: 1, cols: 4, ba: 16, bs: 12, pr: 1 }, 0x7fe00010, 'OW', le('i16', [-2048, -1, 0, 2047])),
  },
  {
    name: 'uint16 BitsStored 12 with a set bit above HighBit (kept as stored, like pydicom 2.3)',
    bytes: file(TSU.explicitLE, { rows: 1, cols: 3, ba: 16, bs: 12, pr: 0 }, 0x7fe00010, 'OW', le('u16', [0x1fff, 4095, 0x8001])),
  },
  {
    name: '8-bit data in OB under Explicit VR Big Endian (OB is never swapped)',
    bytes: file(TSU.explicitBE, { rows: 1, cols: 4, ba: 8 }, 0x7fe00010, 'OB', Buffer.from([1, 2, 3, 4])),
  },
];

describe('synthetic native layouts vs pydicom 2.3', () => {
  const skip = pythonUnavailable();
  const tmp = makeTmpDir('pixels-native-');
  const refs: RefResult[] = [];
  const ours: PixelArray[] = [];
  before(async () => {
    for (const c of PY_CASES) ours.push((await decodePixels(c.bytes)).array);
    if (skip) return;
    const files = PY_CASES.map((c, i) => {
      const f = path.join(tmp.dir, `case${i}.dcm`);
      writeFileSync(f, c.bytes);
      return { file: f };
    });
    refs.push(...runReference(files));
  });
  after(() => tmp.cleanup());

  PY_CASES.forEach((c, i) => {
    it(c.name, { skip: skip ?? false }, () => {
      const r = refs[i];
      assert.ok(r.ok, r.error);
      assert.equal(ours[i].dtype, r.dtype);
      assert.deepEqual(ours[i].shape, r.shape);
      assert.equal(sha256(ours[i].data), r.sha256);
    });
  });
});

function values(a: PixelArray): number[] {
  const b = a.data;
  const n = b.length;
  const out: number[] = [];
  const read = {
    int8: (o: number) => b.readInt8(o),
    uint8: (o: number) => b.readUInt8(o),
    int16: (o: number) => b.readInt16LE(o),
    uint16: (o: number) => b.readUInt16LE(o),
    int32: (o: number) => b.readInt32LE(o),
    uint32: (o: number) => b.readUInt32LE(o),
    float32: (o: number) => b.readFloatLE(o),
    float64: (o: number) => b.readDoubleLE(o),
  }[a.dtype];
  const size = { int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, float64: 8 }[a.dtype];
  for (let o = 0; o < n; o += size) out.push(read(o));
  return out;
}

describe('sign extension from BitsStored (deliberately unlike pydicom 2.3)', () => {
  // Stored as 12-bit two's complement WITHOUT extension into the top 4 bits: 0x0FFF is -1.
  const raw12 = [0x0fff, 0x0800, 0x07ff, 0x0001, 0xf800];
  const f12 = file(TSU.explicitLE, { rows: 1, cols: 5, ba: 16, bs: 12, pr: 1 }, 0x7fe00010, 'OW', le('u16', raw12));

  it('int16 BitsStored 12: low 12 bits are the value, upper bits ignored', async () => {
    const { array } = await decodePixels(f12);
    assert.equal(array.dtype, 'int16');
    assert.deepEqual(values(array), [-1, -2048, 2047, 1, -2048]);
  });

  it('documents what pydicom 2.3 returns for the same file (raw 16-bit words)', { skip: pythonUnavailable() ?? false }, () => {
    const tmp = makeTmpDir('pixels-sign-');
    try {
      const f = path.join(tmp.dir, 'sign.dcm');
      writeFileSync(f, f12);
      const [r] = runReference([{ file: f }]);
      const raw = Buffer.alloc(10);
      // pydicom 2.3: int16 view of the stored words, no extension: 4095, 2048, 2047, 1, -2048.
      [4095, 2048, 2047, 1, -2048].forEach((v, i) => raw.writeInt16LE(v, i * 2));
      assert.equal(r.sha256, sha256(raw));
    } finally {
      tmp.cleanup();
    }
  });

  it('int8 BitsStored 4 and int32 BitsStored 24', async () => {
    const f8 = file(TSU.explicitLE, { rows: 1, cols: 4, ba: 8, bs: 4, pr: 1 }, 0x7fe00010, 'OB', Buffer.from([0x0f, 0x08, 0x07, 0xf1]));
    assert.deepEqual(values((await decodePixels(f8)).array), [-1, -8, 7, 1]);
    const f32 = file(TSU.explicitLE, { rows: 1, cols: 3, ba: 32, bs: 24, pr: 1 }, 0x7fe00010, 'OW',
      le('u32', [0x00ffffff, 0x00800000, 0xff7fffff]));
    assert.deepEqual(values((await decodePixels(f32)).array), [-1, -8388608, 8388607]);
  });
});

describe('layouts with no pydicom 2.3 reference', () => {
  it('8-bit data in OW under Explicit VR Big Endian is word-swapped (PS3.5 7.3)', async () => {
    // Pixels 1,2,3,4 as 16-bit OW words in big endian: bytes 02 01 04 03 on disk.
    const f = file(TSU.explicitBE, { rows: 1, cols: 4, ba: 8 }, 0x7fe00010, 'OW', Buffer.from([2, 1, 4, 3]));
    assert.deepEqual(values((await decodePixels(f)).array), [1, 2, 3, 4]);
  });

  it('Encapsulated Uncompressed (1.2.840.10008.1.2.1.98) equals the same native frames', async () => {
    const attrs: ImageAttrs = { rows: 2, cols: 3, frames: 2, spp: 3, ba: 16, pc: 1, pr: 1 };
    const data = le('i16', seq(36, (i) => (i - 18) * 911));
    const native = await decodePixels(file(TSU.explicitLE, attrs, 0x7fe00010, 'OW', data));
    const frameBytes = 36;
    const enc = buildPart10(TSU.encapsulatedUncompressed, imageElements(attrs), {
      bot: [],
      fragments: [data.subarray(0, frameBytes), data.subarray(frameBytes)],
    });
    const got = await decodePixels(enc);
    assert.deepEqual(got.array, native.array);
  });
});
