/**
 * The optional subject lookup table: CSV with the original PatientID in the first column and
 * the subject ID to use in the second. A header row is recognised when its first cell is not
 * an ID anyone would use ("PatientID", "patient_id", "original"...).
 */
export function parseLookupCsv(text: string): Map<string, string> {
  const table = new Map<string, string>();
  const rows = parseCsv(text);
  rows.forEach((row, i) => {
    if (row.length === 1 && row[0] === '') return;
    if (i === 0 && /^(original|patient[ _-]?id|pid|source)/i.test(row[0] ?? '')) return;
    if (row.length < 2 || row[0] === '' || row[1] === '') throw new Error(`lookup table line ${i + 1}: expected "original PatientID,subject ID"`);
    if (row[1].length > 64) throw new Error(`lookup table line ${i + 1}: subject ID longer than 64 characters`);
    if (table.has(row[0])) throw new Error(`lookup table line ${i + 1}: duplicate PatientID`);
    table.set(row[0], row[1]);
  });
  return table;
}

/** RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field.trim()), (field = '');
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field.trim());
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) rows.push([...row, field.trim()]);
  return rows;
}
