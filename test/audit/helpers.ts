import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AuditEvent } from '../../src/audit/events';
import { Pseudonymizer } from '../../src/deid/pseudonyms';

export const pseudo = new Pseudonymizer(Buffer.alloc(32, 7));

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'deid-audit-'));
}

/** A realistic mix of events for instance i, built the way the gateway must: originals only as keyed hashes. */
export function eventsFor(i: number): AuditEvent[] {
  const spoolId = `spool-${i}`;
  const originalSop = `1.2.826.0.1.3680043.2.1125.${i}`;
  const originalStudy = `1.2.826.0.1.3680043.2.1125.9.${i % 7}`;
  return [
    { type: 'instance.received', spoolId, callingAE: 'MODALITY1', bytes: 1000 + i, originalSopHash: pseudo.keyedHash(originalSop) },
    {
      type: 'instance.deidentified', spoolId, route: 'research', profile: 'basic', options: ['retainSafePrivate'],
      removed: 12, replaced: 3, remapped: 4,
      newStudyUid: pseudo.uid(originalStudy), newSeriesUid: pseudo.uid(`${originalStudy}.1`), newSopInstanceUid: pseudo.uid(originalSop),
      pixelSha256Before: 'ab'.repeat(32), pixelSha256After: 'ab'.repeat(32),
      originalStudyHash: pseudo.keyedHash(originalStudy), originalSopHash: pseudo.keyedHash(originalSop),
    },
    { type: 'instance.forwarded', spoolId, destination: 'pacs', newSopInstanceUid: pseudo.uid(originalSop), status: 200, attempts: 1 },
  ];
}

export function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

export function writeLines(file: string, ls: string[]): void {
  fs.writeFileSync(file, ls.map((l) => `${l}\n`).join(''));
}
