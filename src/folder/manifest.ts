/** One manifest.csv row; every value is already de-identified. */
export interface ManifestRow {
  patient: string;
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  instanceNumber: string;
  file: string;
  shape: string;
  dtype: string;
  pixelSpacing: string;
  sliceThickness: string;
}

const MANIFEST_COLUMNS: (keyof ManifestRow | 'label')[] = ['patient', 'studyUid', 'seriesUid', 'sopInstanceUid', 'instanceNumber', 'file', 'shape', 'dtype', 'pixelSpacing', 'sliceThickness', 'label'];

const csvCell = (v: string): string => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/** manifest.csv: one row per instance, sorted for stable diffs, with an empty label column. */
export function renderManifest(rows: ManifestRow[]): string {
  const sorted = [...rows].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const lines = [MANIFEST_COLUMNS.join(',')];
  for (const r of sorted) lines.push(MANIFEST_COLUMNS.map((c) => csvCell(c === 'label' ? '' : r[c])).join(','));
  return `${lines.join('\n')}\n`;
}
