import { T } from '../dicom/tags';
import { encodeString } from '../dicom/values';
import { Syntax } from '../dicom/transfer-syntax';
import { OutNode } from '../dicom/writer';
import { CodedConcept, METHOD_CODES, OPTION_NAMES } from './profiles/types';
import { DeidSettings } from './settings';

export const PRODUCT = 'deid-gateway 0.1.0';

/** CID 7050 codes for what this run did. pixel-only removes at least what Basic removes. */
export function methodCodes(settings: DeidSettings): CodedConcept[] {
  const codes = [METHOD_CODES.basic];
  if (settings.profile === 'basic') for (const option of OPTION_NAMES) if (settings.options.has(option)) codes.push(METHOD_CODES[option]);
  return codes;
}

export function longitudinalStatus(settings: DeidSettings): 'UNMODIFIED' | 'MODIFIED' | 'REMOVED' {
  if (settings.profile !== 'basic') return 'REMOVED';
  if (settings.options.has('retainLongModifiedDates')) return 'MODIFIED';
  if (settings.options.has('retainLongFullDates')) return 'UNMODIFIED';
  return 'REMOVED';
}

/** LO values are at most 64 characters: the method text is split into several values. */
function methodText(settings: DeidSettings): string {
  const words = [`${PRODUCT}`, `profile ${settings.profile}`, ...[...settings.options].sort().map((o) => `option ${o}`)];
  if (settings.overrides.length) words.push(`${settings.overrides.length} per-run overrides`);
  return words.map((w) => w.slice(0, 64)).join('\\');
}

/** The De-identification Method attributes (PS3.15 E.1.1), as top-level nodes. */
export function markingNodes(settings: DeidSettings, syntax: Syntax): OutNode[] {
  const str = (tag: number, vr: string, text: string): OutNode => ({ kind: 'value', tag, vr, value: encodeString(text, vr) });
  return [
    str(T.PatientIdentityRemoved, 'CS', 'YES'),
    str(T.DeidentificationMethod, 'LO', methodText(settings)),
    {
      kind: 'sequence',
      tag: T.DeidentificationMethodCodeSequence,
      headerVr: 'SQ',
      undefinedLength: false,
      itemSyntax: syntax,
      items: methodCodes(settings).map((c) => ({
        kind: 'item' as const,
        undefinedLength: false,
        nodes: [str(T.CodeValue, 'SH', c.value), str(T.CodingSchemeDesignator, 'SH', c.scheme), str(T.CodeMeaning, 'LO', c.meaning)],
      })),
    },
    str(T.LongitudinalTemporalInformationModified, 'CS', longitudinalStatus(settings)),
  ];
}
