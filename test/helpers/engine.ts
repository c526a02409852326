import * as fs from 'node:fs';
import { PartsSource } from '../../src/dicom/parts-source';
import { DeidOutcome, Engine } from '../../src/deid/deidentify';
import { DEFAULT_SETTINGS, DeidSettings, PIXEL_RISKS } from '../../src/deid/settings';

export const TEST_SECRET = Buffer.from('test-secret-0123456789abcdef', 'utf8');

/** Settings for tests: defaults, then the given changes. */
export const settings = (changes: Partial<DeidSettings> = {}): DeidSettings => ({ ...DEFAULT_SETTINGS, ...changes });
export const acceptAllRisks = new Set(PIXEL_RISKS);

/** Runs the engine in-process on file bytes. */
export function deidBytes(input: Buffer, s: DeidSettings, secret = TEST_SECRET): DeidOutcome {
  return new Engine(s, secret).processBytes(input);
}

export function deidFile(file: string, s: DeidSettings, secret = TEST_SECRET): DeidOutcome {
  return deidBytes(fs.readFileSync(file), s, secret);
}

/** The complete output file of a forwarded outcome (throws otherwise, with the reason). */
export function outputBytes(outcome: DeidOutcome): Buffer {
  if (outcome.kind !== 'forward') throw new Error(`expected forward, got ${outcome.kind}: ${outcome.code} ${outcome.reason}`);
  const ps = new PartsSource(outcome.output.parts);
  return Buffer.concat([outcome.output.meta, ps.slice(0, ps.size)]);
}
