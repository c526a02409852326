import * as fs from 'node:fs';
import * as path from 'node:path';
import { DicomParseError } from '../dicom/errors';
import { PartsSource } from '../dicom/parts-source';
import { Engine } from '../deid/deidentify';
import { openInstance } from '../io/instance-file';
import { applyRescale, decodePixels, encodeNpy, encodePng16, PixelDecodeError } from '../pixels';
import { ManifestRow } from './manifest';
import { ensureDir, FileResult, FolderTarget, quarantineFile, safeName } from './process-file';

export type ExtractFormat = 'npy' | 'png16';

export interface ExtractOptions {
  format: ExtractFormat;
  rescale: boolean;
}

/**
 * The "pixel arrays only" path: de-identify (for the pseudonyms and the same policies, leak
 * guard included), then decode the de-identified instance's pixels at full depth and write
 * them as .npy or lossless PNG. Nothing of the header but the manifest columns leaves.
 */
export async function extractFile(engine: Engine, rel: string, target: FolderTarget, opts: ExtractOptions): Promise<FileResult> {
  const input = path.join(target.inRoot, rel);
  let bytesIn = 0;
  try {
    const opened = openInstance(input);
    bytesIn = opened.size;
    let outcome;
    let deidentified: Buffer;
    try {
      outcome = engine.process(opened.instance);
      if (outcome.kind === 'skip') return { rel, outcome: 'skipped', code: outcome.code, reason: outcome.reason, bytesIn, bytesOut: 0 };
      if (outcome.kind === 'quarantine') return quarantineFile(engine, rel, target, outcome.code, outcome.reason, bytesIn);
      const ps = new PartsSource(outcome.output.parts);
      deidentified = Buffer.concat([outcome.output.meta, ps.slice(0, ps.size)]);
    } finally {
      opened.close();
    }
    const o = outcome.output;
    const { info, array } = await decodePixels(deidentified);
    const pixels = opts.rescale ? applyRescale(array, info.rescaleSlope ?? 1, info.rescaleIntercept ?? 0) : array;
    const dir = path.join(safeName(o.patientPseudonym), safeName(o.studyUid), safeName(o.seriesUid));
    ensureDir(path.join(target.outRoot, dir));
    let file: string;
    let bytesOut = 0;
    if (opts.format === 'npy') {
      file = path.join(dir, `${safeName(o.sopInstanceUid)}.npy`);
      bytesOut = writeAtomic(path.join(target.outRoot, file), encodeNpy(pixels));
    } else {
      file = path.join(dir, `${safeName(o.sopInstanceUid)}_f*.png`);
      for (let f = 0; f < pixels.shape[0]; f++) {
        const name = path.join(dir, `${safeName(o.sopInstanceUid)}_f${String(f + 1).padStart(4, '0')}.png`);
        bytesOut += writeAtomic(path.join(target.outRoot, name), encodePng16(pixels, f));
      }
    }
    const manifest: ManifestRow = {
      patient: o.patientPseudonym,
      studyUid: o.studyUid,
      seriesUid: o.seriesUid,
      sopInstanceUid: o.sopInstanceUid,
      instanceNumber: info.instanceNumber === undefined ? '' : String(info.instanceNumber),
      file,
      shape: pixels.shape.join('x'),
      dtype: pixels.dtype,
      pixelSpacing: info.pixelSpacing ? info.pixelSpacing.join('\\') : '',
      sliceThickness: info.sliceThickness === undefined ? '' : String(info.sliceThickness),
    };
    return { rel, outcome: 'written', bytesIn, bytesOut, output: file, manifest };
  } catch (err) {
    if (err instanceof DicomParseError && err.code === 'NOT_DICOM') return { rel, outcome: 'ignored', code: err.code, reason: err.message, bytesIn, bytesOut: 0 };
    const code = err instanceof DicomParseError || err instanceof PixelDecodeError ? err.code : 'INTERNAL_ERROR';
    return quarantineFile(engine, rel, target, code, (err as Error).message, bytesIn);
  }
}

function writeAtomic(target: string, data: Buffer): number {
  const tmp = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, target);
  return data.length;
}
