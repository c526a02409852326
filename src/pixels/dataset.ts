/**
 * Part 10 parsing with dicom-parser (read-only, lazy, byte offsets) and extraction of the
 * Image Pixel attributes. Nothing here decodes pixels.
 */
import * as dicomParser from 'dicom-parser';
import { inflateRawSync } from 'node:zlib';
import { PixelDecodeError, describeThrown } from './errors';
import type { PixelInfo } from './types';

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  encapsulatedUncompressedLE: '1.2.840.10008.1.2.1.98',
  explicitBE: '1.2.840.10008.1.2.2',
  rle: '1.2.840.10008.1.2.5',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegExtended: '1.2.840.10008.1.2.4.51',
  jpegLosslessP14: '1.2.840.10008.1.2.4.57',
  jpegLosslessSV1: '1.2.840.10008.1.2.4.70',
  jpegLsLossless: '1.2.840.10008.1.2.4.80',
  jpegLsNearLossless: '1.2.840.10008.1.2.4.81',
  j2kLossless: '1.2.840.10008.1.2.4.90',
  j2k: '1.2.840.10008.1.2.4.91',
  htj2kLossless: '1.2.840.10008.1.2.4.201',
  htj2kLosslessRpcl: '1.2.840.10008.1.2.4.202',
  htj2k: '1.2.840.10008.1.2.4.203',
} as const;

/** Which pixel element carries the image; decides dtype for the float variants. */
export type PixelElementKind = 'PixelData' | 'FloatPixelData' | 'DoubleFloatPixelData';

export interface ParsedPixels {
  info: PixelInfo;
  /** Dataset as dicom-parser sees it; byteArray is the inflated stream for deflated files. */
  dataSet: dicomParser.DataSet;
  element: dicomParser.Element;
  kind: PixelElementKind;
  /** 2 for YBR_FULL_422 native data (Y1 Y2 Cb Cr), else samplesPerPixel. */
  storedSamplesPerPixel: number;
  planarConfiguration: number;
  bigEndian: boolean;
}

// Deflate bombs: a CT slice inflates ~2-10x; refuse anything beyond 2 GiB of data set.
const MAX_INFLATED = 2 ** 31 - 1;

function parse(part10: Buffer): dicomParser.DataSet {
  if (part10.length < 132 || part10.toString('latin1', 128, 132) !== 'DICM') {
    throw new PixelDecodeError('NOT_DICOM', 'no "DICM" prefix at byte 128: not a DICOM Part 10 file');
  }
  try {
    return dicomParser.parseDicom(part10, {
      // Explicit inflater so the behaviour does not depend on dicom-parser's environment sniffing.
      inflater: (arr: Uint8Array, position: number) => {
        const header = Buffer.from(arr.buffer, arr.byteOffset, position);
        const body = inflateRawSync(Buffer.from(arr.buffer, arr.byteOffset + position, arr.length - position), {
          maxOutputLength: MAX_INFLATED,
        });
        return Buffer.concat([header, body]);
      },
      // dicom-parser's typing says void, the implementation uses the returned array.
    } as unknown as dicomParser.ParseDicomOptions);
  } catch (e) {
    // On overrun dicom-parser throws {exception, dataSet}: if the element it died in is the
    // pixel data, the file was cut inside the pixels.
    const partial = (e as { dataSet?: dicomParser.DataSet })?.dataSet;
    const lastPixel = partial?.elements['x7fe00010'] ?? partial?.elements['x7fe00008'] ?? partial?.elements['x7fe00009'];
    if (lastPixel && lastPixel.dataOffset + lastPixel.length > part10.length) {
      throw new PixelDecodeError(
        'TRUNCATED_PIXEL_DATA',
        `pixel data declares ${lastPixel.length} bytes at offset ${lastPixel.dataOffset} but the file has ${part10.length} bytes`,
        { cause: e },
      );
    }
    throw new PixelDecodeError('INVALID_DICOM', `cannot parse data set: ${describeThrown(e)}`, { cause: e });
  }
}

/*
 * Accessors that never throw: dicom-parser's typed getters throw TypeErrors on malformed
 * values (e.g. floatString(tag, 1) on a single-valued DS), and a corrupt header must become
 * a PixelDecodeError, not a crash.
 */
function text(ds: dicomParser.DataSet, tag: string): string | undefined {
  try {
    const v = ds.string(tag);
    return v === undefined ? undefined : v.replace(/\0/g, '').trim();
  } catch {
    return undefined;
  }
}

/** Numeric values of a DS/IS element (backslash separated); NaN for unparsable ones. */
function numbers(ds: dicomParser.DataSet, tag: string): number[] {
  const s = text(ds, tag);
  if (!s) return [];
  return s.split('\\').map((v) => (v.trim() === '' ? NaN : Number(v.trim())));
}

function optionalNumber(ds: dicomParser.DataSet, tag: string): number | undefined {
  const v = numbers(ds, tag)[0];
  return v === undefined || !Number.isFinite(v) ? undefined : v;
}

function uint16(ds: dicomParser.DataSet, tag: string): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length < 2 || el.dataOffset + 2 > ds.byteArray.length) return undefined;
  return ds.uint16(tag);
}

function requiredUint16(ds: dicomParser.DataSet, tag: string, name: string): number {
  const v = uint16(ds, tag);
  if (v === undefined) throw new PixelDecodeError('MISSING_ATTRIBUTE', `${name} (${tagLabel(tag)}) is missing or empty`);
  return v;
}

function tagLabel(tag: string): string {
  return `${tag.slice(1, 5).toUpperCase()},${tag.slice(5).toUpperCase()}`;
}

export function readPixelDataSet(part10: Buffer): ParsedPixels {
  const dataSet = parse(part10);
  const transferSyntaxUid = text(dataSet, 'x00020010') ?? '';
  if (!transferSyntaxUid) throw new PixelDecodeError('INVALID_DICOM', 'file meta has no TransferSyntaxUID (0002,0010)');

  // Same precedence as pydicom: integer Pixel Data first, then the float variants.
  const kinds: [PixelElementKind, string][] = [
    ['PixelData', 'x7fe00010'],
    ['FloatPixelData', 'x7fe00008'],
    ['DoubleFloatPixelData', 'x7fe00009'],
  ];
  const found = kinds.find(([, t]) => dataSet.elements[t] !== undefined);
  if (!found) throw new PixelDecodeError('NO_PIXEL_DATA', 'no (7FE0,0010), (7FE0,0008) or (7FE0,0009) element');
  const [kind, pixelTag] = found;
  const element = dataSet.elements[pixelTag];

  const rows = requiredUint16(dataSet, 'x00280010', 'Rows');
  const columns = requiredUint16(dataSet, 'x00280011', 'Columns');
  const bitsAllocated = requiredUint16(dataSet, 'x00280100', 'BitsAllocated');
  const samplesPerPixel = requiredUint16(dataSet, 'x00280002', 'SamplesPerPixel');
  const photometric = text(dataSet, 'x00280004') ?? '';
  if (!photometric) throw new PixelDecodeError('MISSING_ATTRIBUTE', 'PhotometricInterpretation (0028,0004) is missing');
  // Float Pixel Data has no BitsStored / PixelRepresentation (PS3.3 C.7.6.3): use BA and 0.
  const isInteger = kind === 'PixelData';
  const bitsStored = isInteger ? requiredUint16(dataSet, 'x00280101', 'BitsStored') : bitsAllocated;
  const pixelRepresentation = isInteger ? requiredUint16(dataSet, 'x00280103', 'PixelRepresentation') : 0;

  const nf = numbers(dataSet, 'x00280008')[0];
  const frames = nf === undefined || nf === 0 ? 1 : nf; // pydicom: missing or 0 -> 1
  if (!Number.isInteger(frames)) throw new PixelDecodeError('INVALID_ATTRIBUTE', `NumberOfFrames is not an integer`);

  if (rows === 0 || columns === 0) throw new PixelDecodeError('INVALID_ATTRIBUTE', `image is ${rows}x${columns}`);
  if (frames < 0) throw new PixelDecodeError('INVALID_ATTRIBUTE', `NumberOfFrames is ${frames}`);
  if (samplesPerPixel < 1) throw new PixelDecodeError('INVALID_ATTRIBUTE', `SamplesPerPixel is ${samplesPerPixel}`);
  if (bitsStored < 1 || bitsStored > bitsAllocated) {
    throw new PixelDecodeError('INVALID_ATTRIBUTE', `BitsStored ${bitsStored} with BitsAllocated ${bitsAllocated}`);
  }
  if (pixelRepresentation > 1) throw new PixelDecodeError('INVALID_ATTRIBUTE', `PixelRepresentation is ${pixelRepresentation}`);

  const planarConfiguration = samplesPerPixel > 1 ? (uint16(dataSet, 'x00280006') ?? 0) : 0;
  const spacing = numbers(dataSet, 'x00280030');

  const info: PixelInfo = {
    rows,
    columns,
    frames,
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    pixelRepresentation,
    photometric,
    rescaleSlope: optionalNumber(dataSet, 'x00281053'),
    rescaleIntercept: optionalNumber(dataSet, 'x00281052'),
    // (row spacing, column spacing) in mm, as stored; only when both values are numbers.
    pixelSpacing: spacing.length >= 2 && spacing.slice(0, 2).every(Number.isFinite) ? [spacing[0], spacing[1]] : undefined,
    sliceThickness: optionalNumber(dataSet, 'x00180050'),
    instanceNumber: optionalNumber(dataSet, 'x00200013'),
    transferSyntaxUid,
  };
  for (const k of Object.keys(info) as (keyof PixelInfo)[]) if (info[k] === undefined) delete info[k];

  return {
    info,
    dataSet,
    element,
    kind,
    storedSamplesPerPixel: photometric === 'YBR_FULL_422' && samplesPerPixel === 3 ? 2 : samplesPerPixel,
    planarConfiguration,
    bigEndian: transferSyntaxUid === TS.explicitBE,
  };
}
