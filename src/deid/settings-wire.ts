import { OptionName } from './profiles/types';
import { DeidSettings, Override, PixelRisk, ProfileName } from './settings';

/** DeidSettings in a form that crosses worker_threads and JSON (sets and maps as arrays). */
export interface WireSettings {
  profile: ProfileName;
  options: OptionName[];
  overrides: Override[];
  acceptRisks: PixelRisk[];
  patientIdPrefix: string;
  dateShiftDays: { min: number; max: number };
  lookup?: { entries: [string, string][]; required: boolean };
}

export function toWire(s: DeidSettings): WireSettings {
  return {
    profile: s.profile,
    options: [...s.options],
    overrides: [...s.overrides],
    acceptRisks: [...s.acceptRisks],
    patientIdPrefix: s.patientIdPrefix,
    dateShiftDays: s.dateShiftDays,
    lookup: s.lookup && { entries: [...s.lookup.table], required: s.lookup.required },
  };
}

export function fromWire(w: WireSettings): DeidSettings {
  return {
    ...w,
    options: new Set(w.options),
    acceptRisks: new Set(w.acceptRisks),
    lookup: w.lookup && { table: new Map(w.lookup.entries), required: w.lookup.required },
  };
}
