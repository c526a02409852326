import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, test } from 'node:test';
import { BufferSource, ByteSource } from '../../src/dicom/byte-source';
import { DElement } from '../../src/dicom/dataset';
import { DicomParseError } from '../../src/dicom/errors';
import { readInstance } from '../../src/dicom/part10';
import { encodeNodes, OutNode, partsToBuffer } from '../../src/dicom/writer';
import { El, el, encodeDataset, encodeFile, makeImage, seq } from '../support/dicom-builder';
import { repoRoot } from '../support/tools';

const SAMPLES = path.join(repoRoot(), 'test/fixtures/samples');
const samples = fs.readdirSync(SAMPLES).filter((f) => f.endsWith('.dcm') && f !== 'pydicom__MR_truncated.dcm');

/** Rebuilds every sequence and item from its children (nothing copied whole). */
function rebuilt(elements: DElement[], src: ByteSource): OutNode[] {
  return elements.map((e): OutNode => {
    if (!e.items) return { kind: 'copy', tag: e.tag, src, start: e.start, end: e.end };
    return {
      kind: 'sequence', tag: e.tag, headerVr: e.fileVr === 'UN' ? 'UN' : 'SQ', undefinedLength: e.length === 0xffffffff, itemSyntax: e.itemSyntax!,
      items: e.items.map((it) => ({ kind: 'item' as const, undefinedLength: it.length === 0xffffffff, nodes: rebuilt(it.elements, src) })),
    };
  });
}

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof DicomParseError && err.code === code && err.message.length > 10, `expected DicomParseError ${code}`);
}

describe('every sample re-encodes to identical bytes', () => {
  for (const file of samples) {
    test(file, () => {
      const inst = readInstance(new BufferSource(fs.readFileSync(path.join(SAMPLES, file))));
      const { src, start, end, syntax } = inst.dataset;
      // Elements tile the dataset: nothing skipped, nothing read twice.
      let pos = start;
      for (const e of inst.dataset.elements) assert.equal(e.start, pos), (pos = e.end);
      assert.equal(pos, end);
      assert.equal(end, src.size);
      const out = partsToBuffer(encodeNodes(rebuilt(inst.dataset.elements, src), syntax).parts);
      assert.ok(out.equals(src.slice(start, end)), 'sequences rebuilt from their items must encode to the same bytes');
    });
  }
});

describe('encodings', () => {
  const body: El[] = [
    el('PatientName', 'Doe^John'),
    seq('ReferencedImageSequence', [el('ReferencedSOPClassUID', '1.2.3'), el('ReferencedSOPInstanceUID', '1.2.3.4')], []),
    el('Rows', [513]),
  ];
  for (const syntax of ['implicitLE', 'explicitLE', 'explicitBE', 'deflatedLE'] as const) {
    test(`${syntax}: values, sequences and the empty item are read`, () => {
      const inst = readInstance(new BufferSource(encodeFile(body, { syntax })));
      const [refs, name, rows] = inst.dataset.elements; // ascending tag order
      assert.equal(inst.dataset.src.slice(name.valueStart, name.valueStart + name.length).toString(), 'Doe^John');
      assert.equal(refs.items?.length, 2, 'the empty item is kept');
      assert.equal(refs.items?.[1].elements.length, 0);
      const v = inst.dataset.src.slice(rows.valueStart, rows.valueStart + 2);
      assert.equal(syntax === 'explicitBE' ? v.readUInt16BE(0) : v.readUInt16LE(0), 513);
    });
  }
  test('a sequence hidden in an explicit UN is read as implicit VR items (dictionary VR wins)', () => {
    const inner = encodeDataset([el('CodeValue', 'T-A0100'), el('CodeMeaning', 'Brain')], 'implicitLE');
    const un: El = { tag: 0x00082218, vr: 'UN', value: Buffer.concat([Buffer.from([0xfe, 0xff, 0x00, 0xe0]), u32(inner.length), inner]) };
    const inst = readInstance(new BufferSource(encodeFile([un], { syntax: 'explicitLE' })));
    const [anatomic] = inst.dataset.elements;
    assert.equal(anatomic.fileVr, 'UN');
    assert.equal(anatomic.vr, 'SQ');
    assert.equal(anatomic.items?.[0].elements.length, 2);
    assert.equal(anatomic.items?.[0].elements[1].vr, 'LO');
  });
  test('the pydicom UN sequence sample parses its UN-encoded sequence', () => {
    const inst = readInstance(new BufferSource(fs.readFileSync(path.join(SAMPLES, 'pydicom__UN_sequence.dcm'))));
    const hidden = inst.dataset.elements.find((e) => e.fileVr === 'UN' && e.items);
    assert.ok(hidden, 'a UN element was read as a sequence');
  });
  test('a bare dataset (no preamble, no meta) in implicit VR is recognised', () => {
    const inst = readInstance(new BufferSource(encodeDataset(body, 'implicitLE')));
    assert.equal(inst.meta, null);
    assert.equal(inst.transferSyntax.uid, '1.2.840.10008.1.2');
    assert.equal(inst.dataset.elements.length, 3);
  });
});

describe('bad input gets a typed error, never a crash or a hang', () => {
  test('not DICOM', () => expectCode(() => readInstance(new BufferSource(Buffer.from('%PDF-1.4 hello world, not an image at all'))), 'NOT_DICOM'));
  test('too short', () => expectCode(() => readInstance(new BufferSource(Buffer.from('DICM'))), 'NOT_DICOM'));
  test('truncated inside pixel data', () => {
    const img = makeImage();
    expectCode(() => readInstance(new BufferSource(img.subarray(0, img.length - 10))), 'TRUNCATED');
  });
  test('an item length past its sequence', () => {
    const img = makeImage({ extra: [seq('ReferencedImageSequence', [el('ReferencedSOPInstanceUID', '1.2.3.4')])] });
    const at = img.indexOf(Buffer.from([0xfe, 0xff, 0x00, 0xe0]));
    img.writeUInt32LE(0x00ffff00, at + 4);
    expectCode(() => readInstance(new BufferSource(img)), 'BAD_LENGTH');
  });
  test('a 50 MB text value', () => {
    const huge = makeImage({ extra: [el('ImageComments', 'A'.repeat(50 << 20), 'UT')] });
    expectCode(() => readInstance(new BufferSource(huge)), 'VALUE_TOO_LONG');
  });
  test('sequences nested 10,000 deep', () => {
    // Built by hand: a recursive encoder would itself overflow the stack.
    const open = Buffer.from('4000600253510000ffffffff' + 'feff00e0ffffffff', 'hex');
    const close = Buffer.from('feff0de000000000' + 'feffdde000000000', 'hex');
    const body = Buffer.concat([...Array(10_000).fill(open), ...Array(10_000).fill(close)]);
    const file = Buffer.concat([encodeFile([el('PatientName', 'X')], { syntax: 'explicitLE' }), body]);
    expectCode(() => readInstance(new BufferSource(file)), 'NESTING_TOO_DEEP');
  });
  test('an invalid VR', () => {
    const img = makeImage();
    const at = img.indexOf(Buffer.from('PN'), 132 + 150);
    img.write('p?', at, 'latin1');
    expectCode(() => readInstance(new BufferSource(img)), 'BAD_VR');
  });
  test('a broken deflate stream', () => {
    const file = encodeFile([el('PatientName', 'X')], { syntax: 'deflatedLE' });
    const metaEnd = file.length - zlib.deflateRawSync(encodeDataset([el('PatientName', 'X')], 'explicitLE')).length;
    file.fill(0xff, metaEnd);
    expectCode(() => readInstance(new BufferSource(file)), 'BAD_DEFLATE');
  });
  test('an unknown transfer syntax that is not a UID', () => {
    expectCode(() => readInstance(new BufferSource(encodeFile([el('PatientName', 'X')], { transferSyntaxUID: 'hello', syntax: 'explicitLE' }))), 'UNSUPPORTED_TRANSFER_SYNTAX');
  });
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
