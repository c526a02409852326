import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { BufferSource, FileSource } from '../../src/dicom/byte-source';
import { hashRange } from '../../src/pipeline/pixel-hash';

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
