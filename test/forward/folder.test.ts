/**
 * Folder destination: the deidentify command's layout, atomic replacement, per-instance
 * errors, probe.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { createDestination, OutgoingInstance } from '../../src/forward/destination';
import { PermanentError } from '../../src/forward/errors';
import { FolderDestination } from '../../src/forward/folder';
import { makeImage } from '../support/dicom-builder';
import { withTempDir } from '../support/tools';

const secrets = { readFile: (p: string) => fs.readFileSync(p, 'utf8'), env: {} };

function instance(dir: string, n: number, over: Partial<OutgoingInstance> = {}): OutgoingInstance & { file: string } {
  const file = path.join(dir, `in-${n}.dcm`);
  fs.writeFileSync(file, makeImage({ rows: 4 + n, cols: 4 }));
  return {
    file, sopClassUid: '1.2.840.10008.5.1.4.1.1.4', sopInstanceUid: `2.25.100${n}`, studyUid: '2.25.1', seriesUid: '2.25.2',
    transferSyntaxUid: '1.2.840.10008.1.2.1', patientPseudonym: 'ANON-ABC', ...over,
  };
}

describe('folder destination', () => {
  it('writes <path>/<patient>/<study>/<series>/<sop>.dcm with the exact bytes', async () => {
    await withTempDir(async (dir) => {
      const out = path.join(dir, 'out');
      const d = createDestination('archive', { type: 'folder', path: out }, secrets);
      assert.ok(d instanceof FolderDestination);
      assert.equal(d.name, 'archive');
      const list = [instance(dir, 1), instance(dir, 2, { seriesUid: '2.25.3' }), instance(dir, 3, { patientPseudonym: 'ANON-XYZ', studyUid: '2.25.9' })];
      const r = await d.send(list);
      assert.deepEqual([...r.values()], [null, null, null]);
      const expect = [
        ['ANON-ABC', '2.25.1', '2.25.2', '2.25.1001.dcm'],
        ['ANON-ABC', '2.25.1', '2.25.3', '2.25.1002.dcm'],
        ['ANON-XYZ', '2.25.9', '2.25.2', '2.25.1003.dcm'],
      ];
      expect.forEach((parts, i) => {
        const p = path.join(out, ...parts);
        assert.ok(fs.readFileSync(p).equals(fs.readFileSync(list[i].file)), p);
      });
      // Nothing else: no temporary files left behind.
      const all = fs.readdirSync(out, { recursive: true }).map(String).filter((f) => f.endsWith('.dcm') || f.includes('.tmp'));
      assert.equal(all.length, 3);
      await d.close();
    });
  });

  it('an instance held in memory is written with the exact bytes (no temporary file left)', async () => {
    await withTempDir(async (dir) => {
      const out = path.join(dir, 'out');
      const d = createDestination('archive', { type: 'folder', path: out }, secrets);
      const inst = instance(dir, 7);
      const bytes = fs.readFileSync(inst.file);
      fs.rmSync(inst.file);
      const r = await d.send([{ ...inst, file: undefined, bytes }]);
      assert.equal(r.get(inst.sopInstanceUid), null);
      assert.ok(fs.readFileSync(path.join(out, 'ANON-ABC', '2.25.1', '2.25.2', '2.25.1007.dcm')).equals(bytes));
      assert.deepEqual(fs.readdirSync(out, { recursive: true }).map(String).filter((f) => f.includes('.tmp')), []);
    });
  });

  it('path-unsafe pseudonyms are made safe exactly like the deidentify command does', async () => {
    await withTempDir(async (dir) => {
      const d = new FolderDestination('f', { path: path.join(dir, 'out') });
      const inst = instance(dir, 1, { patientPseudonym: '../evil/..\\x y' });
      assert.deepEqual(await d.send([inst]), new Map([[inst.sopInstanceUid, null]]));
      assert.equal(FolderDestination.relativePath(inst), path.join('__evil_.._x_y', '2.25.1', '2.25.2', '2.25.1001.dcm'));
      assert.ok(fs.existsSync(path.join(dir, 'out', '__evil_.._x_y', '2.25.1', '2.25.2', '2.25.1001.dcm')));
    });
  });

  it('a resend replaces the file atomically (same name, new content)', async () => {
    await withTempDir(async (dir) => {
      const d = new FolderDestination('f', { path: path.join(dir, 'out') });
      const inst = instance(dir, 1);
      await d.send([inst]);
      const target = path.join(dir, 'out', FolderDestination.relativePath(inst));
      const before = fs.statSync(target).ino;
      fs.writeFileSync(inst.file, Buffer.concat([fs.readFileSync(inst.file), Buffer.alloc(2)]));
      await d.send([inst]);
      assert.ok(fs.readFileSync(target).equals(fs.readFileSync(inst.file)));
      assert.notEqual(fs.statSync(target).ino, before, 'renamed into place, not rewritten in place');
    });
  });

  it('a missing input is a PermanentError for that instance only', async () => {
    await withTempDir(async (dir) => {
      const d = new FolderDestination('f', { path: path.join(dir, 'out') });
      const good = instance(dir, 1);
      const gone = { ...instance(dir, 2), file: path.join(dir, 'missing.dcm') };
      const r = await d.send([good, gone]);
      assert.equal(r.get(good.sopInstanceUid), null);
      const e = r.get(gone.sopInstanceUid);
      assert.ok(e instanceof PermanentError);
      assert.equal(e.code, 'FS_ENOENT');
    });
  });

  it('probe: true for a creatable folder, false when the path is a file', async () => {
    await withTempDir(async (dir) => {
      assert.equal(await new FolderDestination('f', { path: path.join(dir, 'a', 'b') }).probe(), true);
      fs.writeFileSync(path.join(dir, 'file'), 'x');
      assert.equal(await new FolderDestination('f', { path: path.join(dir, 'file') }).probe(), false);
    });
  });
});
