import { isIP } from 'node:net';
import { ByteSource } from '../dicom/byte-source';
import { DElement, findElement, stringValue } from '../dicom/dataset';
import { tagForKeyword } from '../dicom/dictionary';
import { parseTagString, T, Tag } from '../dicom/tags';
import { RouteConfig } from '../config/schema';

/** What routing rules can look at: the association and a few header values. */
export interface RoutingFacts {
  callingAE?: string;
  calledAE?: string;
  peer?: string;
  elements: DElement[];
  src: ByteSource;
}

export const resolveConfigTag = (text: string): Tag => {
  const tag = parseTagString(text) ?? tagForKeyword(text);
  if (tag === undefined) throw new Error(`unknown attribute "${text}"`);
  return tag;
};

function value(facts: RoutingFacts, tag: Tag): string | undefined {
  const el = findElement(facts.elements, tag);
  return el && !el.items && el.length <= 4096 ? stringValue(facts.src, el) : undefined;
}

/** IPv4 CIDR (or a plain address, v4 or v6) match; IPv4-mapped IPv6 peers are unwrapped. */
export function addressMatches(peer: string | undefined, rule: string): boolean {
  if (!peer) return false;
  const address = peer.replace(/^::ffff:/, '');
  const [net, bitsText] = rule.split('/');
  if (bitsText === undefined) return address === net.replace(/^::ffff:/, '');
  if (isIP(address) !== 4 || isIP(net) !== 4) return false;
  const bits = Number(bitsText);
  const toInt = (a: string): number => a.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((toInt(address) & mask) >>> 0) === ((toInt(net) & mask) >>> 0);
}

export function routeMatches(route: RouteConfig, facts: RoutingFacts): boolean {
  const m = route.match;
  if (m.callingAE !== undefined && m.callingAE !== facts.callingAE) return false;
  if (m.calledAE !== undefined && m.calledAE !== facts.calledAE) return false;
  if (m.sourceIp !== undefined && !addressMatches(facts.peer, m.sourceIp)) return false;
  if (m.modality && !m.modality.includes(value(facts, T.Modality) ?? '')) return false;
  if (m.sopClass && !m.sopClass.includes(value(facts, T.SOPClassUID) ?? '')) return false;
  for (const cond of m.tags) {
    const v = value(facts, resolveConfigTag(cond.tag));
    if ('present' in cond && (v !== undefined) !== cond.present) return false;
    if ('equals' in cond && v !== cond.equals) return false;
    if ('regex' in cond && (v === undefined || !new RegExp(cond.regex).test(v))) return false;
  }
  return true;
}

/**
 * The routes an instance takes: the first matching route (first-match), or every matching
 * route (fan-out). No match means the instance is dropped (audited by the caller).
 */
export function selectRoutes(routes: RouteConfig[], mode: 'first-match' | 'fan-out', facts: RoutingFacts): RouteConfig[] {
  const matching = routes.filter((r) => routeMatches(r, facts));
  return mode === 'first-match' ? matching.slice(0, 1) : matching;
}
