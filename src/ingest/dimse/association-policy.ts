import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Config } from '../../config/schema';
import { ContextResult, ContextResultCode, RejectReason, RejectResult, RejectSource, VERIFICATION_SOP_CLASS } from './statuses';

/**
 * Who may associate, and which presentation contexts are accepted. Pure: no sockets, no
 * dcmjs-dimse; compiled once from the config so a bad host entry fails at start, not at the
 * first association.
 */

type DimseConfig = Config['dimse'];

export interface AssociationRequestInfo {
  calledAE: string;
  callingAE: string;
  /** Normalized peer address (see normalizePeerAddress). */
  peer: string;
  /** Associations accepted and still open, not counting this one. */
  activeAssociations: number;
}

export type AssociationDecision =
  | { accept: true }
  | { accept: false; result: number; source: number; reason: number; why: string };

export interface ContextDecision {
  result: ContextResultCode;
  /** The accepted transfer syntax (only with ContextResult.Accept). */
  transferSyntax?: string;
}

export interface AssociationPolicy {
  decide(req: AssociationRequestInfo): AssociationDecision;
  decideContext(abstractSyntax: string, proposedTransferSyntaxes: readonly string[]): ContextDecision;
}

const UID = /^[0-9]+(\.[0-9]+)*$/;

/** Storage SOP classes outside the 1.2.840.10008.5.1.4.1.1 arc (PS3.4 Table B.5-1). */
const OTHER_STORAGE_CLASSES: ReadonlySet<string> = new Set([
  '1.2.840.10008.5.1.4.34.7', // RT Beams Delivery Instruction Storage
  '1.2.840.10008.5.1.4.34.10', // RT Patient Position Acquisition Instruction Storage
  '1.2.840.10008.5.1.4.38.1', // Hanging Protocol Storage
  '1.2.840.10008.5.1.4.39.1', // Color Palette Storage
  '1.2.840.10008.5.1.4.43.1', // Generic Implant Template Storage
  '1.2.840.10008.5.1.4.44.1', // Implant Assembly Template Storage
  '1.2.840.10008.5.1.4.45.1', // Implant Template Group Storage
]);

/** A standard Storage SOP class: everything under 1.2.840.10008.5.1.4.1.1, plus the few elsewhere. */
export function isStorageSopClass(uid: string): boolean {
  return (uid.startsWith('1.2.840.10008.5.1.4.1.1.') && UID.test(uid)) || OTHER_STORAGE_CLASSES.has(uid);
}

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** '::ffff:10.1.2.3' -> '10.1.2.3'; other addresses unchanged (IPv6 lower-cased); undefined -> ''. */
export function normalizePeerAddress(address: string | undefined): string {
  if (!address) return '';
  const m = MAPPED_V4.exec(address);
  return m ? m[1] : address.toLowerCase();
}

/** Parses "addr" or "addr/prefix" (IPv4, IPv6, IPv4-mapped IPv6) into a BlockList rule. */
function addHostRule(list: BlockList, entry: string, where: string): void {
  const text = entry.trim();
  const slash = text.indexOf('/');
  let addr = slash < 0 ? text : text.slice(0, slash);
  let prefix: number | undefined;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) throw new Error(`${where}: "${entry}" has an invalid prefix length`);
    prefix = Number(p);
  }
  const mapped = MAPPED_V4.exec(addr);
  if (mapped) {
    addr = mapped[1];
    if (prefix !== undefined) {
      if (prefix < 96) throw new Error(`${where}: "${entry}": an IPv4-mapped block needs a prefix of at least 96`);
      prefix -= 96;
    }
  }
  const family = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
  if (!family) throw new Error(`${where}: "${entry}" is not an IPv4/IPv6 address or CIDR block (host names are not accepted)`);
  const max = family === 'ipv4' ? 32 : 128;
  if (prefix === undefined) list.addAddress(addr, family);
  else if (prefix > max) throw new Error(`${where}: "${entry}": prefix length above ${max}`);
  else list.addSubnet(addr, prefix, family);
}

/** Does the normalized peer address match the list? */
function peerMatches(list: BlockList, peer: string): boolean {
  if (isIPv4(peer)) return list.check(peer, 'ipv4');
  if (isIPv6(peer)) return list.check(peer, 'ipv6');
  return false;
}

function reject(result: number, source: number, reason: number, why: string): AssociationDecision {
  return { accept: false, result, source, reason, why };
}

/** Throws (naming the config path) when a caller's host entry is not an address or CIDR block. */
export function compileAssociationPolicy(cfg: DimseConfig): AssociationPolicy {
  /** AE title -> allowed addresses; null = any address. Several entries of one AE are united. */
  const callers = new Map<string, BlockList | null>();
  cfg.callers.forEach((c, i) => {
    const ae = c.aeTitle.trim();
    if (c.hosts.length === 0) {
      callers.set(ae, null);
      return;
    }
    let list = callers.get(ae);
    if (list === null) return; // already "any address"
    if (!list) {
      list = new BlockList();
      callers.set(ae, list);
    }
    for (const h of c.hosts) addHostRule(list, h, `dimse.callers[${i}].hosts`);
  });
  const sopClasses = new Set(cfg.sopClasses);
  const transferSyntaxes = new Set(cfg.transferSyntaxes);
  const calledAE = cfg.aeTitle.trim();

  const sopClassAccepted = (uid: string): boolean =>
    uid === VERIFICATION_SOP_CLASS || (sopClasses.size > 0 ? sopClasses.has(uid) : isStorageSopClass(uid));
  const tsAllowed = (uid: string): boolean =>
    UID.test(uid) && uid.length <= 64 && (transferSyntaxes.size === 0 || transferSyntaxes.has(uid));

  return {
    decide(req) {
      if (req.calledAE !== calledAE) {
        return reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CalledAeNotRecognized,
          'called AE title not recognized');
      }
      if (!cfg.acceptAnyCaller) {
        if (!callers.has(req.callingAE)) {
          return reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized,
            'calling AE title not recognized');
        }
        const hosts = callers.get(req.callingAE);
        if (hosts && !peerMatches(hosts, req.peer)) {
          return reject(RejectResult.Permanent, RejectSource.ServiceUser, RejectReason.CallingAeNotRecognized,
            'calling AE title not allowed from this address');
        }
      }
      if (req.activeAssociations >= cfg.maxAssociations) {
        return reject(RejectResult.Transient, RejectSource.ServiceProviderPresentation, RejectReason.LocalLimitExceeded,
          `association limit reached (${cfg.maxAssociations})`);
      }
      return { accept: true };
    },

    decideContext(abstractSyntax, proposed) {
      if (!sopClassAccepted(abstractSyntax)) return { result: ContextResult.AbstractSyntaxNotSupported };
      const ts = proposed.find(tsAllowed);
      if (ts !== undefined) return { result: ContextResult.Accept, transferSyntax: ts };
      // Verification carries no data set: its transfer syntax does not matter.
      if (abstractSyntax === VERIFICATION_SOP_CLASS && proposed.length > 0) {
        return { result: ContextResult.Accept, transferSyntax: proposed[0] };
      }
      return { result: ContextResult.TransferSyntaxesNotSupported };
    },
  };
}
