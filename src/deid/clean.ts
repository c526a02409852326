import { Identifier, asciiLower, findIn } from './identifiers';

/**
 * Clean (C) for free text: the text is kept, but every identifying value of this instance that
 * occurs in it (case-insensitively) and every date-like or long digit run is overwritten with
 * 'X' of the same length, so the descriptor keeps its meaning but not the identity.
 */
export function scrubText(value: Buffer, identifiers: readonly Identifier[]): Buffer {
  const out = Buffer.from(value);
  const lower = asciiLower(value);
  for (const id of identifiers) {
    if (id.kind === 'uid') continue;
    let i = findIn(lower, id);
    while (i >= 0) {
      out.fill(0x58, i, i + id.bytes.length);
      lower.fill(0x58, i, i + id.bytes.length);
      i = findIn(lower, id);
    }
  }
  // Dates (1990-01-02, 02/01/1990, 19900102) and digit runs of 6+ (IDs, phone numbers).
  const text = out.toString('latin1');
  const re = /\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{6,}/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.fill(0x58, m.index, m.index + m[0].length);
  return out;
}
