import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { BufferSource, FileSource } from '../../src/dicom/byte-source';
import { T } from '../../src/dicom/tags';
import { openInstance } from '../../src/io/instance-file';
import { hashRange, pixelHashOfFile } from '../../src/pipeline/pixel-hash';
import { makeImage } from '../support/dicom-builder';

test('hashRange gives the SHA-256 of the range, from memory and from a file through its reused chunk buffer', () => {
  const bytes = randomBytes(20 << 20); // several 8 MB chunks
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pixel-hash-')), 'data.bin');
  fs.writeFileSync(file, bytes);
  const fd = fs.openSync(file, 'r');
  try {
    for (const [start, end] of [[0, bytes.length], [12345, (17 << 20) + 3], [(8 << 20) - 1, (8 << 20) + 1], [5, 5]]) {
      const want = createHash('sha256').update(bytes.subarray(start, end)).digest('hex');
      assert.equal(hashRange(new BufferSource(bytes), start, end), want);
      assert.equal(hashRange(new FileSource(fd), start, end), want, `file range ${start}-${end}`);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
});

test('pixelHashOfFile with the input range: equal bytes give the input hash, any differing byte is hashed for real', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixel-verify-'));
  try {
    const file = path.join(dir, 'out.dcm');
    const bytes = makeImage({ rows: 700, cols: 800 }); // > 1 MiB of Pixel Data: several compare chunks
    fs.writeFileSync(file, bytes);
    const opened = openInstance(file);
    const px = opened.instance.dataset.elements.find((e) => e.tag === T.PixelData)!;
    const range = { start: px.valueStart, end: px.end };
    opened.close();
    const real = createHash('sha256').update(bytes.subarray(range.start, range.end)).digest('hex');
    assert.equal(pixelHashOfFile(file), real, 'without an input: hashed');

    const input = (src: Buffer) => ({ src: new BufferSource(src), ...range, sha256: 'f'.repeat(64) });
    // The same bytes: the known hash is taken (a marker hash shows it was not recomputed).
    assert.equal(pixelHashOfFile(file, input(bytes)), 'f'.repeat(64));
    // One byte differs near the end (past the first compare chunk): the file's own hash.
    const changed = Buffer.from(bytes);
    changed[range.end - 3] ^= 0xff;
    assert.equal(pixelHashOfFile(file, input(changed)), real);
    // A range of another length: hashed.
    assert.equal(pixelHashOfFile(file, { ...input(bytes), end: range.end - 2 }), real);
    // A large input read through a FileSource (compared through reused buffers).
    const inFile = path.join(dir, 'in.dcm');
    fs.writeFileSync(inFile, changed);
    const fd = fs.openSync(inFile, 'r');
    try {
      assert.equal(pixelHashOfFile(file, { src: new FileSource(fd, 4096), ...range, sha256: 'e'.repeat(64) }), real);
      fs.writeFileSync(inFile, bytes);
      assert.equal(pixelHashOfFile(file, { src: new FileSource(fd, 4096), ...range, sha256: 'e'.repeat(64) }), 'e'.repeat(64));
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
