import { ByteSource } from '../dicom/byte-source';
import { DElement, stringValue } from '../dicom/dataset';
import { Tag, elementOf, groupOf, isPrivateCreator, isPrivateTag } from '../dicom/tags';

/** Key of the private block (gggg,xx00-xxFF) an element lives in, or null. */
export function blockOf(tag: Tag): number | null {
  if (!isPrivateTag(tag)) return null;
  const xx = isPrivateCreator(tag) ? elementOf(tag) : elementOf(tag) >> 8;
  return xx >= 0x10 ? groupOf(tag) * 256 + xx : null;
}

/** Private creator value of each block reserved in one dataset (creators are per item). */
export function privateCreators(elements: DElement[], src: ByteSource): Map<number, string> {
  const out = new Map<number, string>();
  for (const el of elements) {
    if (isPrivateCreator(el.tag) && !el.items && el.length <= 64) out.set(blockOf(el.tag)!, stringValue(src, el).trim());
  }
  return out;
}

/** Creator of a private data element's block (never of a creator element itself). */
export function creatorOf(tag: Tag, creators: Map<number, string>): string | null {
  if (!isPrivateTag(tag) || isPrivateCreator(tag)) return null;
  const block = blockOf(tag);
  return block === null ? null : creators.get(block) ?? null;
}
