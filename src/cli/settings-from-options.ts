import * as fs from 'node:fs';
import { tagForKeyword } from '../dicom/dictionary';
import { parseTagString, Tag } from '../dicom/tags';
import { parseLookupCsv } from '../deid/lookup-table';
import { OPTION_NAMES, OptionName } from '../deid/profiles/types';
import { DEFAULT_SETTINGS, DeidSettings, Override, PIXEL_RISKS, PixelRisk, ProfileName } from '../deid/settings';

export interface DeidCliOptions {
  profile: string;
  option: string[];
  keep: string[];
  remove: string[];
  empty: string[];
  replace: string[];
  acceptRisk: string[];
  patientPrefix: string;
  dateShift: string;
  lookup?: string;
  lookupRequired?: boolean;
}

/** A usage error: the message names the option and the bad value. */
export class UsageError extends Error {}

export function resolveTag(text: string, option: string): Tag {
  const tag = parseTagString(text) ?? tagForKeyword(text.trim());
  if (tag === undefined) throw new UsageError(`${option}: unknown attribute "${text}" (use a keyword such as ImageComments or a tag such as 0020,4000)`);
  return tag;
}

export function settingsFromOptions(o: DeidCliOptions): DeidSettings {
  if (o.profile !== 'pixel-only' && o.profile !== 'basic') throw new UsageError(`--profile: expected pixel-only or basic, got "${o.profile}"`);
  const options = o.option.map((name) => {
    if (!(OPTION_NAMES as readonly string[]).includes(name)) throw new UsageError(`--option: unknown option "${name}"; one of ${OPTION_NAMES.join(', ')}`);
    return name as OptionName;
  });
  if (options.length && o.profile !== 'basic') throw new UsageError('--option: Table E.1-1 options apply to the basic profile only');
  if (options.includes('retainLongFullDates') && options.includes('retainLongModifiedDates')) {
    throw new UsageError('--option: retainLongFullDates and retainLongModifiedDates are alternatives; choose one');
  }
  const risks = o.acceptRisk.map((r) => {
    if (!(PIXEL_RISKS as readonly string[]).includes(r)) throw new UsageError(`--accept-risk: unknown risk "${r}"; one of ${PIXEL_RISKS.join(', ')}`);
    return r as PixelRisk;
  });
  const overrides: Override[] = [
    ...o.keep.map((t) => ({ tag: resolveTag(t, '--keep'), action: 'keep' as const })),
    ...o.remove.map((t) => ({ tag: resolveTag(t, '--remove'), action: 'remove' as const })),
    ...o.empty.map((t) => ({ tag: resolveTag(t, '--empty'), action: 'empty' as const })),
    ...o.replace.map((spec) => {
      const eq = spec.indexOf('=');
      if (eq < 1) throw new UsageError(`--replace: expected TAG=VALUE, got "${spec}"`);
      return { tag: resolveTag(spec.slice(0, eq), '--replace'), action: 'replace' as const, value: spec.slice(eq + 1) };
    }),
  ];
  const m = /^(-?\d+):(-?\d+)$/.exec(o.dateShift);
  if (!m || +m[1] > +m[2]) throw new UsageError(`--date-shift: expected MIN:MAX days with MIN <= MAX, got "${o.dateShift}"`);
  if (o.patientPrefix.length > 40 || /[\\^=]/.test(o.patientPrefix)) throw new UsageError('--patient-prefix: at most 40 characters, without \\ ^ =');
  let lookup: DeidSettings['lookup'];
  if (o.lookup) {
    try {
      lookup = { table: parseLookupCsv(fs.readFileSync(o.lookup, 'utf8')), required: !!o.lookupRequired };
    } catch (err) {
      throw new UsageError(`--lookup ${o.lookup}: ${(err as Error).message}`);
    }
  } else if (o.lookupRequired) throw new UsageError('--lookup-required needs --lookup FILE');
  return {
    ...DEFAULT_SETTINGS,
    profile: o.profile as ProfileName,
    options: new Set(options),
    overrides,
    acceptRisks: new Set(risks),
    patientIdPrefix: o.patientPrefix,
    dateShiftDays: { min: +m[1], max: +m[2] },
    lookup,
  };
}
