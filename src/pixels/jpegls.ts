/**
 * JPEG-LS (ISO 14495-1) scan layout. With interleave mode "none" (ILV 0) each colour
 * component is its own scan, and dcmjs-codecs' CharLS build then returns the frame
 * colour-by-plane while still reporting the data set's PlanarConfiguration. DICOM allows
 * that mode (PS3.5 A.4.3), so we read the first SOS and interleave ourselves when needed.
 */

/** Number of components in the first scan (Ns of the first SOS), or undefined if unreadable. */
export function firstScanComponents(b: Uint8Array): number | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined; // SOI
  let p = 2;
  while (p + 4 < b.length) {
    if (b[p] !== 0xff) return undefined;
    const marker = b[p + 1];
    if (marker === 0xff) {
      p += 1; // fill byte
      continue;
    }
    const len = (b[p + 2] << 8) | b[p + 3];
    if (marker === 0xda) return b[p + 4]; // SOS: Ls(2) Ns(1) ...
    if (len < 2) return undefined;
    p += 2 + len;
  }
  return undefined;
}

/** True when a multi-sample JPEG-LS frame decodes colour-by-plane (one component per scan). */
export function jpegLsDecodesPlanar(frame: Uint8Array, samplesPerPixel: number): boolean {
  return samplesPerPixel > 1 && firstScanComponents(frame) === 1;
}
