import { T, tagOf } from './tags';
import { EXPLICIT_LE } from './transfer-syntax';
import { encodeNodes, OutNode, partsToBuffer } from './writer';
import { encodeString } from './values';

/** This product's Implementation Class UID (a UUID-derived 2.25 root, fixed forever). */
export const IMPLEMENTATION_CLASS_UID = '2.25.260614159792484894308919311364966307396';
export const IMPLEMENTATION_VERSION_NAME = 'DEIDGW_0_1';

export interface MetaFields {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
}

/**
 * A new File Meta Information group, preamble included. It never carries the sender's
 * SourceApplicationEntityTitle or private information: only what PS3.10 requires.
 */
export function encodeFileMeta(f: MetaFields): Buffer {
  const nodes: OutNode[] = [
    { kind: 'value', tag: tagOf(0x0002, 0x0001), vr: 'OB', value: Buffer.from([0, 1]) },
    { kind: 'value', tag: T.MediaStorageSOPClassUID, vr: 'UI', value: encodeString(f.sopClassUid, 'UI') },
    { kind: 'value', tag: T.MediaStorageSOPInstanceUID, vr: 'UI', value: encodeString(f.sopInstanceUid, 'UI') },
    { kind: 'value', tag: T.TransferSyntaxUID, vr: 'UI', value: encodeString(f.transferSyntaxUid, 'UI') },
    { kind: 'value', tag: tagOf(0x0002, 0x0012), vr: 'UI', value: encodeString(IMPLEMENTATION_CLASS_UID, 'UI') },
    { kind: 'value', tag: tagOf(0x0002, 0x0013), vr: 'SH', value: encodeString(IMPLEMENTATION_VERSION_NAME, 'SH') },
  ];
  const body = partsToBuffer(encodeNodes(nodes, EXPLICIT_LE).parts);
  const groupLength = Buffer.alloc(12);
  groupLength.writeUInt32LE(0x00000002, 0);
  groupLength.write('UL', 4, 'latin1');
  groupLength.writeUInt16LE(4, 6);
  groupLength.writeUInt32LE(body.length, 8);
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  return Buffer.concat([preamble, groupLength, body]);
}
