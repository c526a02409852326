import { ByteSource } from './byte-source';
import { Tag } from './tags';
import { Syntax } from './transfer-syntax';

/** One encoded element: where it is, never a copy of its value. */
export interface DElement {
  tag: Tag;
  /** Effective VR: the explicit VR, or the dictionary's for implicit data and for UN it knows. */
  vr: string;
  /** VR bytes as written in the file (null for implicit VR). */
  fileVr: string | null;
  start: number;
  valueStart: number;
  /** Value length as encoded; UNDEFINED_LENGTH for undefined-length sequences and fragments. */
  length: number;
  /** Offset just past the element (past its delimiter for undefined length). */
  end: number;
  /** Sequence items (vr === 'SQ'). */
  items?: DItem[];
  /** Encoding of the item contents: implicit VR LE for a sequence hidden in UN. */
  itemSyntax?: Syntax;
  /** Encapsulated value (undefined-length OB/OW such as compressed Pixel Data): fragment offsets. */
  fragments?: { start: number; length: number }[];
}

export interface DItem {
  start: number;
  valueStart: number;
  length: number;
  end: number;
  elements: DElement[];
}

/** A parsed (sub)dataset: the elements plus what is needed to read and re-encode them. */
export interface DDataset {
  src: ByteSource;
  syntax: Syntax;
  elements: DElement[];
  start: number;
  end: number;
}

/** The value bytes of a defined-length element. */
export function valueBytes(src: ByteSource, el: DElement): Buffer {
  return src.slice(el.valueStart, el.valueStart + el.length);
}

/** A string value with trailing padding (space or NUL) removed; multi-values stay joined by '\'. */
export function stringValue(src: ByteSource, el: DElement): string {
  return valueBytes(src, el).toString('latin1').replace(/[\0 ]+$/, '');
}

export function findElement(elements: DElement[], tag: Tag): DElement | undefined {
  for (const el of elements) if (el.tag === tag) return el;
  return undefined;
}
