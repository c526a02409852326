import { OptionName } from './profiles/types';
import { Tag } from '../dicom/tags';

export type ProfileName = 'pixel-only' | 'basic';

/** Risks an instance can carry in its pixels; each is quarantined unless accepted. */
export const PIXEL_RISKS = [
  'burned-in-annotation',
  'recognizable-visual-features',
  'secondary-capture',
  'encapsulated-document',
  'ultrasound',
] as const;
export type PixelRisk = (typeof PIXEL_RISKS)[number];

export type OverrideAction =
  | { action: 'keep' }
  | { action: 'remove' }
  | { action: 'empty' }
  | { action: 'replace'; value: string };

export type Override = OverrideAction & { tag: Tag };

/** Everything that decides what the engine outputs. Same settings + same secret = same bytes. */
export interface DeidSettings {
  profile: ProfileName;
  /** Table E.1-1 options; only meaningful for the basic profile. */
  options: ReadonlySet<OptionName>;
  /** Per-run overrides on top of the profile, applied to top-level attributes. */
  overrides: readonly Override[];
  /** Pixel risks accepted for this run/route (default: none). */
  acceptRisks: ReadonlySet<PixelRisk>;
  /** Prefix of PatientID/PatientName pseudonyms. */
  patientIdPrefix: string;
  /** Range of the per-patient date offset, in days (retainLongModifiedDates). */
  dateShiftDays: { min: number; max: number };
  /** Original PatientID -> subject ID; wins over the HMAC pseudonym. */
  lookup?: { table: ReadonlyMap<string, string>; required: boolean };
}

export const DEFAULT_SETTINGS: DeidSettings = {
  profile: 'pixel-only',
  options: new Set(),
  overrides: [],
  acceptRisks: new Set(),
  patientIdPrefix: 'ANON-',
  dateShiftDays: { min: -3650, max: -365 },
};
