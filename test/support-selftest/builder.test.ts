/**
 * Self-test of the test builder: real, independent readers (DCMTK dcmdump / dcmdrle,
 * dicom3tools dciodvfy, pydicom) must accept what it writes and see the intended values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  El, Syntax, TS, SOP_CLASS, el, seq, encodeDataset, encodeFile, makeImage, pixelPattern, tagOf, vrOf,
} from '../support/dicom-builder';
import { dcmdump, dciodvfy, python, run, withTempDir } from '../support/tools';

test('dictionary lookups: tagOf / vrOf', () => {
  assert.equal(tagOf('PatientName'), 0x00100010);
  assert.equal(vrOf(0x00100010), 'PN');
  assert.equal(tagOf('OverlayComments'), 0x60004000); // retired: dcmjs names it RETIRED_OverlayComments
  assert.equal(vrOf(0x60023000), 'OW'); // repeating group, dcmjs pseudo-VR "ox"
  assert.equal(tagOf('NameToUse'), 0x00100012); // newer than the dcmjs dictionary: our supplement
  assert.equal(vrOf(0x00100012), 'LT');
  assert.equal(vrOf(0x00090010), 'LO'); // private creator
  assert.equal(vrOf(0x00091001), 'UN'); // private element
  assert.throws(() => tagOf('NoSuchKeyword'));
});

test('strings are padded to even length: UI with NUL, others with space', () => {
  const b = encodeDataset([el('SOPInstanceUID', '1.2.3'), el('PatientID', 'ABC')], 'explicitLE');
  assert.deepEqual([...b.subarray(8, 14)], [...Buffer.from('1.2.3\0', 'latin1')]);
  assert.equal(b.subarray(22, 26).toString('latin1'), 'ABC ');
});

/** A data set exercising numbers, AT, sequences (undefined length, empty item), private and UN. */
function sample(): El[] {
  return [
    el('SOPClassUID', SOP_CLASS.mrImage), el('SOPInstanceUID', '1.2.3'),
    el('PatientName', 'DOE^JOHN'), el('PatientID', 'ID1'),
    el('Rows', [513]), // 0x0201: byte order shows
    el('RealWorldValueFirstValueMapped', [-2], 'SS'),
    el('FrameIncrementPointer', [0x00181063]),
    { tag: 0x00189087, vr: 'FD', value: [1.5] },
    { tag: tagOf('ReferencedImageSequence'), vr: 'SQ', undefinedLength: true, value: [
      { elements: [el('ReferencedSOPInstanceUID', '1.2.3.4')], undefinedLength: true }, { elements: [] }] },
    seq('RequestAttributesSequence', [el('RequestedProcedureID', 'RP7'),
      seq('ProtocolContextSequence', [el('PersonName', 'DEEP^NESTED')])]),
    { tag: 0x00110010, vr: 'LO', value: 'ACME' },
    { tag: 0x00111010, vr: 'UN', undefinedLength: true, value: [{ elements: [el('PatientName', 'INSIDE^UN')] }] },
    { tag: 0x7fe00010, vr: 'OW', value: [1, 2, 0x0102] },
  ];
}

const SYNTAXES: Syntax[] = ['implicitLE', 'explicitLE', 'explicitBE', 'deflatedLE'];

for (const syntax of SYNTAXES) {
  test(`dcmdump reads a ${syntax} Part 10 file with the intended values`, () => withTempDir((dir) => {
    const file = path.join(dir, `${syntax}.dcm`);
    fs.writeFileSync(file, encodeFile(sample(), { syntax }));
    const out = dcmdump(file);
    assert.match(out, new RegExp(`\\(0002,0010\\) UI =${{ implicitLE: 'LittleEndianImplicit', explicitLE: 'LittleEndianExplicit',
      explicitBE: 'BigEndianExplicit', deflatedLE: 'DeflatedLittleEndianExplicit' }[syntax]}`));
    assert.match(out, /\(0002,0003\) UI \[1\.2\.3\]/); // meta copied from the data set
    assert.match(out, /\(0010,0010\) PN \[DOE\^JOHN\]/);
    assert.match(out, /\(0028,0010\) US 513 /);
    assert.match(out, /\(0028,0009\) AT \(0018,1063\)/);
    assert.match(out, /\(0018,9087\) FD 1\.5 /);
    assert.match(out, /\(0040,9216\) (SS -2|xs 65534) /); // implicit: DCMTK cannot know US vs SS
    assert.match(out, /\(0008,1140\) SQ \(Sequence with undefined length #=2\)/);
    assert.match(out, /\(0008,1155\) UI \[1\.2\.3\.4\]/);
    assert.match(out, /\(fffe,e000\) na \(Item with explicit length #=0\)/); // the empty item
    assert.match(out, /\(0040,A123\) PN \[DEEP\^NESTED\]/i);
    assert.match(out, /\(0011,1010\) SQ \(Sequence with undefined length #=1\)/); // UN read as SQ (CP-246)
    assert.match(out, /PN \[INSIDE\^UN\]/);
    assert.match(out, /\(7fe0,0010\) OW 0001\\0002\\0102/);
  }));
}

test('big endian really swaps numbers and OW, not strings', () => {
  const le = encodeDataset([el('Rows', [0x0201]), { tag: 0x7fe00010, vr: 'OW', value: Buffer.from([1, 2]) }], 'explicitLE');
  const be = encodeDataset([el('Rows', [0x0201]), { tag: 0x7fe00010, vr: 'OW', value: Buffer.from([1, 2]) }], 'explicitBE');
  assert.deepEqual([...le.subarray(0, 10)], [0x28, 0, 0x10, 0, 0x55, 0x53, 2, 0, 1, 2]);
  assert.deepEqual([...be.subarray(0, 10)], [0, 0x28, 0, 0x10, 0x55, 0x53, 0, 2, 2, 1]);
  assert.deepEqual([...be.subarray(-2)], [2, 1]);
});

test('a bare data set (no preamble, no meta) is read by dcmdump', () => withTempDir((dir) => {
  for (const syntax of ['explicitLE', 'implicitLE'] as const) {
    const file = path.join(dir, `bare-${syntax}.dcm`);
    fs.writeFileSync(file, encodeDataset(sample(), syntax));
    const out = dcmdump(file);
    assert.match(out, /Used TransferSyntax: Unknown Transfer Syntax/); // i.e. no meta header
    assert.match(out, /\(0010,0010\) PN \[DOE\^JOHN\]/);
  }
}));

test('a UN element with defined length carries the implicit VR encoded items as bytes', () => {
  const inner = encodeDataset([el('PatientName', 'IN^UN')], 'implicitLE');
  const b = encodeDataset([{ tag: 0x00111010, vr: 'UN', value: [{ elements: [el('PatientName', 'IN^UN')] }] }], 'explicitLE');
  assert.equal(b.subarray(4, 6).toString('latin1'), 'UN');
  assert.equal(b.readUInt32LE(8), 8 + inner.length);
  assert.deepEqual(b.subarray(20), inner); // after the item header
});

test('encapsulated pixel data (RLE Lossless) is accepted and decodes to the pattern', () => withTempDir((dir) => {
  const file = path.join(dir, 'rle.dcm');
  fs.writeFileSync(file, makeImage({ modality: 'CT', rows: 5, cols: 7, bits: 16, frames: 2, ts: TS.rleLossless }));
  const out = dcmdump(file);
  assert.match(out, /\(7fe0,0010\) OB \(PixelSequence #=3\)/); // BOT + 2 fragments
  assert.match(out, /\(fffe,e000\) pi \(no value available\)/); // empty Basic Offset Table
  const decoded = path.join(dir, 'decoded.dcm');
  const r = run('dcmdrle', [file, decoded]);
  assert.equal(r.status, 0, r.stderr);
  const expected = pixelPattern(5, 7, 16, 2);
  const first = [0, 1, 2].map((i) => expected.readUInt16LE(i * 2).toString(16).padStart(4, '0')).join('\\\\');
  assert.match(dcmdump(decoded), new RegExp(`\\(7fe0,0010\\) OW ${first}`));
  const py = python('import sys,pydicom; a=pydicom.dcmread(sys.argv[1]).pixel_array; print(a.shape, int(a.sum()))', [file]);
  let sum = 0;
  for (let i = 0; i < expected.length; i += 2) sum += expected.readUInt16LE(i);
  assert.equal(py.trim(), `(2, 5, 7) ${sum}`);
}));

for (const modality of ['MR', 'CT'] as const) {
  test(`makeImage builds a valid ${modality} image in each transfer syntax (dciodvfy, pydicom)`, () => withTempDir((dir) => {
    const iod = modality === 'MR' ? 'MRImage' : 'CTImage';
    for (const ts of [TS.explicitLE, TS.implicitLE, TS.explicitBE, TS.deflatedLE, TS.rleLossless]) {
      const file = path.join(dir, `${modality}-${ts}.dcm`);
      fs.writeFileSync(file, makeImage({ modality, rows: 6, cols: 4, bits: 16, ts }));
      dcmdump(file);
      if (ts !== TS.deflatedLE) { // dicom3tools cannot read deflated files
        const v = dciodvfy(file);
        assert.equal(v.iod, iod, v.output);
        assert.deepEqual(v.errors, [], v.output);
        assert.equal(v.aborted, false);
      }
      const py = python('import sys,pydicom; d=pydicom.dcmread(sys.argv[1]); a=d.pixel_array; print(d.Modality, a.shape, a[1,2])', [file]);
      assert.equal(py.trim(), `${modality} (6, 4) ${(2 * 37 + 1 * 101) % 0x1000}`);
    }
  }));
}

test('makeImage: 8-bit and multi-frame, extra elements override', () => withTempDir((dir) => {
  const file = path.join(dir, 'mf.dcm');
  fs.writeFileSync(file, makeImage({ rows: 3, cols: 3, bits: 8, frames: 4, extra: [el('PatientID', 'OVERRIDE')] }));
  const out = dcmdump(file);
  assert.match(out, /\(0010,0020\) LO \[OVERRIDE\]/);
  assert.match(out, /\(0028,0008\) IS \[4\]/);
  assert.match(out, /\(7fe0,0010\) OB /);
  const py = python('import sys,pydicom; print(pydicom.dcmread(sys.argv[1]).pixel_array.shape)', [file]);
  assert.equal(py.trim(), '(4, 3, 3)');
}));

test('dciodvfy reports an incomplete object', () => withTempDir((dir) => {
  const file = path.join(dir, 'bad.dcm');
  fs.writeFileSync(file, encodeFile([el('SOPClassUID', SOP_CLASS.ctImage), el('SOPInstanceUID', '1.2.3'), el('Modality', 'CT')]));
  const v = dciodvfy(file);
  assert.equal(v.iod, 'CTImage');
  assert.ok(v.errors.length > 0);
}));
