import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Generates src/dicom/dictionary.generated.ts from the PS3.6 data dictionary that dcmjs ships:
 * one line per tag (hex tag, VR, keyword). The engine then needs no dcmjs at run time (dcmjs
 * costs ~100 ms and ~20 MB in every worker thread just to be loaded).
 */
interface DcmjsNameEntry {
  tag: string;
  vr: string;
  name: string;
}

export function renderDictionary(nameMap: Record<string, DcmjsNameEntry>): string {
  const lines = Object.values(nameMap)
    .map((e) => {
      const m = /^\(([0-9A-F]{4}),([0-9A-F]{4})\)$/i.exec(e.tag);
      if (!m) throw new Error(`unexpected dictionary tag ${e.tag}`);
      return `${(m[1] + m[2]).toUpperCase()} ${e.vr} ${e.name.replace(/^RETIRED_/, '')}`;
    })
    .sort();
  return [
    '// GENERATED FILE - DO NOT EDIT. From the PS3.6 dictionary shipped by dcmjs;',
    '// regenerate with `npm run generate:dictionary` (scripts/generate-dictionary.ts).',
    '// One line per tag: GGGGEEEE VR Keyword (dcmjs pseudo-VRs: ox = OB/OW, xs = US/SS, lt = US/OW, up = UL, na = item).',
    'export const DICTIONARY_TEXT = `',
    ...lines,
    '`;',
    '',
  ].join('\n');
}

export const DICTIONARY_FILE = 'src/dicom/dictionary.generated.ts';

if (require.main === module) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dcmjs = require('dcmjs') as { data: { DicomMetaDictionary: { nameMap: Record<string, DcmjsNameEntry> } } };
  const root = path.resolve(__dirname, '..', '..');
  fs.writeFileSync(path.join(root, DICTIONARY_FILE), renderDictionary(dcmjs.data.DicomMetaDictionary.nameMap));
}
