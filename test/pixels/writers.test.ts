/**
 * .npy, PNG and rescale on synthetic arrays (the samples are covered in samples.test.ts:
 * numpy np.load / np.save and Pillow compare every decoded sample there).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { inflateSync } from 'node:zlib';
import { applyRescale, encodeNpy, encodePng16, PixelDecodeError, type Dtype, type PixelArray } from '../../src/pixels';
import { crc32 } from '../../src/pixels/crc32';
import { makeTmpDir, PYTHON, pythonUnavailable } from './helpers';
import { readPng } from './png-reader';

function arr(dtype: Dtype, shape: number[], values: number[]): PixelArray {
  const size = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, float64: 8 }[dtype];
  const data = Buffer.alloc(values.length * size);
  values.forEach((v, i) => {
    const o = i * size;
    ({
      uint8: () => data.writeUInt8(v, o),
      int8: () => data.writeInt8(v, o),
      uint16: () => data.writeUInt16LE(v, o),
      int16: () => data.writeInt16LE(v, o),
      uint32: () => data.writeUInt32LE(v, o),
      int32: () => data.writeInt32LE(v, o),
      float32: () => data.writeFloatLE(v, o),
      float64: () => data.writeDoubleLE(v, o),
    })[dtype]();
  });
  return { dtype, shape, data };
}

const code = (c: string) => (e: unknown) => e instanceof PixelDecodeError && e.code === c;

describe('crc32', () => {
  it('matches the standard check values', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(Buffer.from('IEND')), 0xae426082); // the CRC every PNG ends with
    assert.equal(crc32(Buffer.from('IE'), Buffer.from('ND')), 0xae426082);
  });
});

describe('encodeNpy', () => {
  it('writes a v1.0 header padded to 64 bytes, data after it', () => {
    const a = arr('int16', [1, 2, 3], [-1, 2, -3, 4, -5, 6]);
    const npy = encodeNpy(a);
    assert.equal(npy.subarray(0, 8).toString('latin1'), '\x93NUMPY\x01\x00');
    const hlen = npy.readUInt16LE(8);
    assert.equal((10 + hlen) % 64, 0);
    const header = npy.toString('latin1', 10, 10 + hlen);
    assert.match(header, /^\{'descr': '<i2', 'fortran_order': False, 'shape': \(1, 2, 3\), \} *\n$/);
    assert.deepEqual(npy.subarray(10 + hlen), a.data);
  });

  it('one-dimensional shape uses a trailing comma; bad shapes are refused', () => {
    assert.match(encodeNpy(arr('uint8', [3], [1, 2, 3])).toString('latin1'), /'shape': \(3,\)/);
    assert.throws(() => encodeNpy(arr('uint8', [2, 2], [1, 2, 3])), code('INVALID_ARGUMENT'));
  });

  it('np.load reads every dtype back exactly', { skip: pythonUnavailable() ?? false }, () => {
    const tmp = makeTmpDir('pixels-npy-');
    try {
      const cases: [Dtype, number[], string][] = [
        ['uint8', [0, 255], 'uint8'],
        ['int8', [-128, 127], 'int8'],
        ['uint16', [0, 65535], 'uint16'],
        ['int16', [-32768, 32767], 'int16'],
        ['uint32', [0, 4294967295], 'uint32'],
        ['int32', [-2147483648, 2147483647], 'int32'],
        ['float32', [-1.5, 3.25e38], 'float32'],
        ['float64', [Math.PI, -1e-300], 'float64'],
      ];
      const checks = cases.map(([dt, v, name], i) => {
        const f = path.join(tmp.dir, `${i}.npy`);
        writeFileSync(f, encodeNpy(arr(dt, [1, 1, 2], v)));
        return `a=np.load(${JSON.stringify(f)}); assert a.dtype==np.dtype('${name}') and a.shape==(1,1,2), (a.dtype,a.shape); ` +
          `assert a.tolist()==[[${JSON.stringify(v)}]] or np.array_equal(a, np.array([[${JSON.stringify(v)}]], dtype='${name}')), a`;
      });
      const r = spawnSync(PYTHON, ['-c', `import numpy as np\n${checks.join('\n')}`], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('encodePng16', () => {
  it('uint16 greyscale: 16-bit, values exact, chosen frame', () => {
    const v = Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 2731) % 65536);
    const png = readPng(encodePng16(arr('uint16', [2, 3, 4], v), 1));
    assert.equal(png.depth, 16);
    assert.equal(png.colorType, 0);
    assert.equal(png.width, 4);
    assert.equal(png.height, 3);
    assert.deepEqual(png.samples, v.slice(12));
    assert.equal(png.text['deid-gateway'], 'dtype=uint16 offset=0');
  });

  it('int16 is stored as value + 32768 and says so in tEXt', () => {
    const v = [-32768, -1024, -1, 0, 1, 32767];
    const png = readPng(encodePng16(arr('int16', [1, 2, 3], v), 0));
    assert.equal(png.depth, 16);
    assert.deepEqual(png.samples, v.map((x) => x + 32768));
    assert.match(png.text['deid-gateway'], /dtype=int16 offset=32768/);
  });

  it('uint8 / int8 -> 8-bit greyscale (int8 offset by 128)', () => {
    assert.deepEqual(readPng(encodePng16(arr('uint8', [1, 1, 3], [0, 1, 255]), 0)).samples, [0, 1, 255]);
    const p8 = readPng(encodePng16(arr('int8', [1, 1, 3], [-128, 0, 127]), 0));
    assert.equal(p8.depth, 8);
    assert.deepEqual(p8.samples, [0, 128, 255]);
  });

  it('RGB 16-bit (48-bit PNG) and RGB 8-bit keep every sample', () => {
    const v = Array.from({ length: 5 * 7 * 3 }, (_, i) => (i * 40503) % 65536);
    const p = readPng(encodePng16(arr('uint16', [1, 5, 7, 3], v), 0));
    assert.equal(p.colorType, 2);
    assert.equal(p.depth, 16);
    assert.deepEqual(p.samples, v);
    const v8 = v.map((x) => x & 0xff);
    assert.deepEqual(readPng(encodePng16(arr('uint8', [1, 5, 7, 3], v8), 0)).samples, v8);
  });

  it('rows built to favour each of the five PNG filters round-trip exactly', () => {
    const W = 32;
    let seed = 11;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 8) & 0xff;
    const paeth = (a: number, b: number, c: number) => {
      const p = a + b - c;
      const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
      return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    };
    const rows: number[][] = [];
    rows.push(Array(W).fill(0)); // None
    rows.push(Array.from({ length: W }, (_, x) => 100 + 3 * x)); // Sub
    rows.push(Array.from({ length: W }, rnd));
    rows.push([...rows[2]]); // Up
    const avg = [rows[3][0] >> 1];
    for (let x = 1; x < W; x++) avg.push((avg[x - 1] + rows[3][x]) >> 1);
    rows.push(avg); // Average
    rows.push(Array.from({ length: W }, rnd));
    const pae = [(rows[5][0] + 50) & 0xff];
    for (let x = 1; x < W; x++) pae.push(paeth(pae[x - 1], rows[5][x], rows[5][x - 1]));
    rows.push(pae); // Paeth
    const v = rows.flat();
    const png = encodePng16(arr('uint8', [1, rows.length, W], v), 0);
    assert.deepEqual(readPng(png).samples, v);
    const idat = png.subarray(png.indexOf('IDAT') + 4);
    const raw = inflateSync(idat.subarray(0, png.readUInt32BE(png.indexOf('IDAT') - 4)));
    const filters = rows.map((_, y) => raw[y * (W + 1)]);
    assert.deepEqual([...new Set(filters)].sort(), [0, 1, 2, 3, 4], `filters used: ${filters}`);
  });

  it('refuses what PNG cannot hold losslessly, and bad frames', () => {
    assert.throws(() => encodePng16(arr('uint32', [1, 1, 1], [1]), 0), code('UNSUPPORTED_DTYPE'));
    assert.throws(() => encodePng16(arr('int32', [1, 1, 1], [1]), 0), code('UNSUPPORTED_DTYPE'));
    assert.throws(() => encodePng16(arr('float32', [1, 1, 1], [1]), 0), code('UNSUPPORTED_DTYPE'));
    assert.throws(() => encodePng16(arr('float64', [1, 1, 1], [1]), 0), code('UNSUPPORTED_DTYPE'));
    assert.throws(() => encodePng16(arr('uint8', [1, 1, 1, 2], [1, 2]), 0), code('UNSUPPORTED_DTYPE'));
    assert.throws(() => encodePng16(arr('uint8', [2, 1, 1], [1, 2]), 2), code('INVALID_ARGUMENT'));
    assert.throws(() => encodePng16(arr('uint8', [2, 1, 1], [1, 2]), -1), code('INVALID_ARGUMENT'));
    assert.throws(() => encodePng16(arr('uint8', [2, 1, 1], [1, 2]), 0.5), code('INVALID_ARGUMENT'));
  });

  it('Pillow decodes the 16-bit greyscale PNG to the same values', { skip: pythonUnavailable() ?? false }, () => {
    const tmp = makeTmpDir('pixels-png-');
    try {
      const v = [0, 1, 256, 4095, 65535, 32768];
      const f = path.join(tmp.dir, 'g16.png');
      writeFileSync(f, encodePng16(arr('uint16', [1, 2, 3], v), 0));
      const r = spawnSync(PYTHON, ['-c', `from PIL import Image; import numpy as np; im=Image.open(${JSON.stringify(f)}); print(im.mode, np.array(im).ravel().tolist())`], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^I(;16)? \[0, 1, 256, 4095, 65535, 32768\]\n$/);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('applyRescale', () => {
  it('float32 out = stored * slope + intercept, shape kept', () => {
    const r = applyRescale(arr('int16', [1, 1, 3], [-2000, 0, 3000]), 1, -1024);
    assert.equal(r.dtype, 'float32');
    assert.deepEqual(r.shape, [1, 1, 3]);
    assert.deepEqual([0, 4, 8].map((o) => r.data.readFloatLE(o)), [-3024, -1024, 1976]);
    const s = applyRescale(arr('uint16', [1, 1, 2], [10, 65535]), 0.5, 0.25);
    assert.deepEqual([0, 4].map((o) => s.data.readFloatLE(o)), [5.25, 32767.75]);
  });

  it('accepts data at an odd byte offset (e.g. a slice of the Buffer pool)', () => {
    const backing = Buffer.alloc(7);
    const data = backing.subarray(1);
    data.writeInt16LE(-5, 0);
    data.writeInt16LE(7, 2);
    data.writeInt16LE(100, 4);
    const r = applyRescale({ dtype: 'int16', shape: [1, 1, 3], data }, 2, 1);
    assert.deepEqual([0, 4, 8].map((o) => r.data.readFloatLE(o)), [-9, 15, 201]);
  });

  it('rejects non-finite parameters', () => {
    assert.throws(() => applyRescale(arr('uint8', [1, 1, 1], [1]), NaN, 0), code('INVALID_ARGUMENT'));
    assert.throws(() => applyRescale(arr('uint8', [1, 1, 1], [1]), 1, Infinity), code('INVALID_ARGUMENT'));
  });
});
