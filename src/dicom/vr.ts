/** Value representations, PS3.5 6.2. */
export const VALID_VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV',
  'OW', 'PN', 'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);

/** VRs whose explicit header has 2 reserved bytes and a 32-bit length. */
export const LONG_HEADER_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/** Character-string VRs whose values the engine may read, match or replace. */
export const STRING_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT']);

/**
 * Hostile-input limits. Short string VRs are limited to 64 characters per value by PS3.5;
 * 1 MiB is far above any multi-valued real use. Long text VRs get 16 MiB.
 */
export function maxValueLength(vr: string): number {
  if (vr === 'LT' || vr === 'ST' || vr === 'UT' || vr === 'UC' || vr === 'UR') return 16 << 20;
  if (STRING_VRS.has(vr)) return 1 << 20;
  return Number.MAX_SAFE_INTEGER;
}

/** Padding byte for a string value of this VR (PS3.5 6.2). */
export const padByteFor = (vr: string): number => (vr === 'UI' ? 0x00 : 0x20);
