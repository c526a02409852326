import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { FileSource } from '../../src/dicom/byte-source';
import { Engine } from '../../src/deid/deidentify';
import { openInstance, STREAM_THRESHOLD, writeOutputFile } from '../../src/io/instance-file';
import { el, encodeFile, makeImageDataset } from '../support/dicom-builder';
import { withTempDir } from '../support/tools';
import { settings, TEST_SECRET } from '../helpers/engine';

/**
 * A multi-frame instance above the streaming threshold is parsed through a window and its Pixel
 * Data is copied from the input file in chunks: the output's pixels must be bit for bit the
 * input's. (Peak memory on a 2 GB instance is measured by `npm run bench:deid`.)
 */
test('an instance above the streaming threshold comes out with identical pixel bytes', async () => {
  await withTempDir((dir) => {
    const rows = 512, cols = 512, frames = Math.ceil((STREAM_THRESHOLD + (8 << 20)) / (rows * cols * 2));
    const header = encodeFile(makeImageDataset({ rows, cols, frames: 1, modality: 'CT' }).filter((e) => e.tag !== 0x7fe00010).concat([el('NumberOfFrames', String(frames)), el('PatientName', 'Large^Patient')]), { syntax: 'explicitLE' });
    const input = path.join(dir, 'big.dcm');
    const fd = fs.openSync(input, 'w');
    fs.writeSync(fd, header);
    const pixelHeader = Buffer.from('e07f1000' + '4f570000' + '00000000', 'hex');
    const pixelLength = rows * cols * 2 * frames;
    pixelHeader.writeUInt32LE(pixelLength, 8);
    fs.writeSync(fd, pixelHeader);
    const hash = crypto.createHash('sha256');
    const frame = Buffer.alloc(rows * cols * 2);
    for (let f = 0; f < frames; f++) {
      frame.fill(f & 0xff);
      frame.writeUInt32LE(f, 0);
      hash.update(frame);
      fs.writeSync(fd, frame);
    }
    fs.closeSync(fd);

    const opened = openInstance(input);
    try {
      assert.ok(opened.instance.dataset.src instanceof FileSource, 'large files are read through a window');
      const outcome = new Engine(settings(), TEST_SECRET).process(opened.instance);
      assert.equal(outcome.kind, 'forward');
      if (outcome.kind !== 'forward') return;
      const target = path.join(dir, 'out.dcm');
      writeOutputFile(target, outcome.output.meta, outcome.output.parts);
      const out = fs.readFileSync(target);
      const at = out.lastIndexOf(Buffer.from('e07f1000', 'hex'));
      assert.equal(out.readUInt32LE(at + 8), pixelLength);
      const outHash = crypto.createHash('sha256').update(out.subarray(at + 12, at + 12 + pixelLength)).digest('hex');
      assert.equal(outHash, hash.digest('hex'));
      assert.equal(out.length, at + 12 + pixelLength);
      assert.ok(!out.includes(Buffer.from('Large^Patient')));
    } finally {
      opened.close();
    }
  });
});
