/**
 * A renderer for the subset of Go templates (text/template + the Sprig/Helm functions) that the
 * chart in helm/deid-gateway uses, so the chart can be checked without the helm binary.
 *
 * What it follows from Go/Helm, because a chart that works here must work under helm:
 * - actions `{{ }}` with trim markers `{{- ` / ` -}}`, comments, multi-line actions;
 * - if / else if / else, with / else, range (lists, maps in sorted key order, `$k, $v :=`),
 *   define, template, variables (`:=` declares in the current scope, `=` assigns);
 * - pipelines (the previous value is the last argument), parenthesised pipelines with a field
 *   chain after them, `and`/`or` short-circuiting and returning an operand;
 * - Helm values are float64 (they go through JSON), template number literals are int: `eq` or
 *   `lt` between the two is an error in Go ("incompatible types for comparison") and here too;
 *   a float prints as Go's %v does (1000000 prints as 1e+06);
 * - a field of nil is an error ("nil pointer evaluating interface {}.x"), a missing map key is
 *   nil (Helm's missingkey=zero) or, with `missingKey: 'error'`, an error (like `--strict`);
 * - `toYaml` sorts keys and drops the final newline, as Helm's does.
 *
 * Anything outside the subset (an unknown function, keyword or syntax) throws: a chart edit that
 * needs more must extend this file, never be silently mis-rendered.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';

// ---------------------------------------------------------------------------------------------
// Values

/** A Go int (a template number literal, `len`, `int`); plain JS numbers are Helm's float64. */
export class GoInt {
  constructor(readonly v: number) {}
}

export type Dict = { [key: string]: unknown };

const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof GoInt);
/** Objects that stand for Go structs (.Release, .Chart...): a missing field is always an error. */
const structs = new WeakSet<object>();

export class TemplateError extends Error {}

// ---------------------------------------------------------------------------------------------
// AST

type Arg =
  | { t: 'field'; chain: string[] } // `.a.b`; `.` alone is chain []
  | { t: 'var'; name: string; chain: string[] } // `$x.a`; `$` is name ''
  | { t: 'str'; v: string }
  | { t: 'num'; v: number; int: boolean }
  | { t: 'bool'; v: boolean }
  | { t: 'nil' }
  | { t: 'ident'; name: string }
  | { t: 'paren'; pipe: Pipe; chain: string[] };

interface Cmd {
  args: Arg[];
}

export interface Pipe {
  decl: string[];
  assign: boolean;
  cmds: Cmd[];
  where: string;
}

export type Node =
  | { t: 'text'; v: string }
  | { t: 'action'; pipe: Pipe }
  | { t: 'if' | 'with'; pipe: Pipe; then: Node[]; else: Node[] }
  | { t: 'range'; pipe: Pipe; then: Node[]; else: Node[] }
  | { t: 'template'; name: string; pipe: Pipe | null; where: string };

export interface ParsedTemplate {
  name: string;
  nodes: Node[];
  defines: Map<string, Node[]>;
}

// ---------------------------------------------------------------------------------------------
// Lexing: text and actions

interface RawItem {
  kind: 'text' | 'action';
  v: string;
  line: number;
}

function splitActions(src: string, name: string): RawItem[] {
  const items: RawItem[] = [];
  let i = 0;
  let trimNext = false;
  const lineAt = (pos: number): number => src.slice(0, pos).split('\n').length;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open < 0) {
      items.push({ kind: 'text', v: text, line: lineAt(i) });
      break;
    }
    let p = open + 2;
    if (src[p] === '-' && /\s/.test(src[p + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      p += 2;
    }
    items.push({ kind: 'text', v: text, line: lineAt(i) });
    const line = lineAt(open);
    const body = src.slice(p).replace(/^\s+/, '');
    if (body.startsWith('/*')) {
      const endComment = src.indexOf('*/', p);
      if (endComment < 0) throw new TemplateError(`${name}:${line}: unclosed comment`);
      const m = /^( -)?}}/.exec(src.slice(endComment + 2));
      if (!m) throw new TemplateError(`${name}:${line}: comment ends in "*/" immediately followed by "}}" (or " -}}")`);
      trimNext = m[1] !== undefined;
      i = endComment + 2 + m[0].length;
      continue;
    }
    // Find the closing }} outside string literals.
    let q = p;
    let quote = '';
    for (; q < src.length; q++) {
      const c = src[q];
      if (quote) {
        if (c === '\\' && quote !== '`') q++;
        else if (c === quote) quote = '';
      } else if (c === '"' || c === '`' || c === "'") quote = c;
      else if (c === '}' && src[q + 1] === '}') break;
    }
    if (q >= src.length) throw new TemplateError(`${name}:${line}: unclosed action`);
    let inner = src.slice(p, q);
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      trimNext = true;
    }
    items.push({ kind: 'action', v: inner.trim(), line });
    i = q + 2;
  }
  return items;
}

type Tok =
  | { k: 'str'; v: string; adj: boolean }
  | { k: 'num'; v: number; int: boolean; adj: boolean }
  | { k: 'ident'; v: string; adj: boolean }
  | { k: 'field'; chain: string[]; adj: boolean }
  | { k: 'var'; name: string; chain: string[]; adj: boolean }
  | { k: '(' | ')' | '|' | ':=' | '=' | ','; adj: boolean };

function lexAction(s: string, where: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const ident = /[A-Za-z_][A-Za-z0-9_]*/y;
  const chainAt = (pos: number): { chain: string[]; end: number } => {
    const chain: string[] = [];
    let p = pos;
    while (s[p] === '.') {
      ident.lastIndex = p + 1;
      const m = ident.exec(s);
      if (!m) break;
      chain.push(m[0]);
      p = ident.lastIndex;
    }
    return { chain, end: p };
  };
  while (i < s.length) {
    const adj = i > 0 && !/\s/.test(s[i - 1]);
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      if (j >= s.length) throw new TemplateError(`${where}: unterminated string`);
      toks.push({ k: 'str', v: JSON.parse(s.slice(i, j + 1)) as string, adj });
      i = j + 1;
    } else if (c === '`') {
      const j = s.indexOf('`', i + 1);
      if (j < 0) throw new TemplateError(`${where}: unterminated raw string`);
      toks.push({ k: 'str', v: s.slice(i + 1, j), adj });
      i = j + 1;
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(s[i + 1] ?? ''))) {
      const m = /-?(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)/y;
      m.lastIndex = i;
      const r = m.exec(s)!;
      toks.push({ k: 'num', v: Number(r[0]), int: !r[2] && !r[3], adj });
      i = m.lastIndex;
    } else if (c === '.') {
      const { chain, end } = chainAt(i);
      if (chain.length === 0) {
        if (/[A-Za-z0-9_]/.test(s[i + 1] ?? '')) throw new TemplateError(`${where}: bad field at "${s.slice(i)}"`);
        toks.push({ k: 'field', chain: [], adj });
        i++;
      } else {
        toks.push({ k: 'field', chain, adj });
        i = end;
      }
    } else if (c === '$') {
      ident.lastIndex = i + 1;
      const m = ident.exec(s);
      const nameEnd = m ? ident.lastIndex : i + 1;
      const { chain, end } = chainAt(nameEnd);
      toks.push({ k: 'var', name: m ? m[0] : '', chain, adj });
      i = end;
    } else if (/[A-Za-z_]/.test(c)) {
      ident.lastIndex = i;
      const m = ident.exec(s)!;
      toks.push({ k: 'ident', v: m[0], adj });
      i = ident.lastIndex;
    } else if (s.startsWith(':=', i)) {
      toks.push({ k: ':=', adj });
      i += 2;
    } else if ('()|=,'.includes(c)) {
      toks.push({ k: c as '(' | ')' | '|' | '=' | ',', adj });
      i++;
    } else {
      throw new TemplateError(`${where}: unexpected character ${JSON.stringify(c)}`);
    }
  }
  return toks;
}

// ---------------------------------------------------------------------------------------------
// Parsing

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);

function parsePipe(toks: Tok[], where: string): Pipe {
  let pos = 0;
  const decl: string[] = [];
  let assign = false;
  // Declarations: `$x :=`, `$k, $v :=`, `$x =`.
  const declEnd = toks.findIndex((t) => t.k === ':=' || t.k === '=');
  if (declEnd > 0 && toks.slice(0, declEnd).every((t, j) => (j % 2 === 0 ? t.k === 'var' && t.chain.length === 0 : t.k === ','))) {
    for (let j = 0; j < declEnd; j += 2) decl.push((toks[j] as { name: string }).name);
    assign = toks[declEnd].k === '=';
    pos = declEnd + 1;
  }
  const parseCmds = (stopAtParen: boolean): Cmd[] => {
    const cmds: Cmd[] = [{ args: [] }];
    while (pos < toks.length) {
      const t = toks[pos];
      if (t.k === ')') {
        if (!stopAtParen) throw new TemplateError(`${where}: unexpected ")"`);
        break;
      }
      pos++;
      const cmd = cmds[cmds.length - 1];
      switch (t.k) {
        case '|':
          if (cmd.args.length === 0) throw new TemplateError(`${where}: empty command in pipeline`);
          cmds.push({ args: [] });
          break;
        case 'str':
          cmd.args.push({ t: 'str', v: t.v });
          break;
        case 'num':
          cmd.args.push({ t: 'num', v: t.v, int: t.int });
          break;
        case 'field':
          cmd.args.push({ t: 'field', chain: t.chain });
          break;
        case 'var':
          cmd.args.push({ t: 'var', name: t.name, chain: t.chain });
          break;
        case 'ident':
          if (t.v === 'true' || t.v === 'false') cmd.args.push({ t: 'bool', v: t.v === 'true' });
          else if (t.v === 'nil') cmd.args.push({ t: 'nil' });
          else if (KEYWORDS.has(t.v)) throw new TemplateError(`${where}: keyword "${t.v}" inside a pipeline`);
          else cmd.args.push({ t: 'ident', name: t.v });
          break;
        case '(': {
          const inner = parseCmds(true);
          if (toks[pos]?.k !== ')') throw new TemplateError(`${where}: unclosed "("`);
          pos++;
          let chain: string[] = [];
          const next = toks[pos];
          if (next && next.k === 'field' && next.adj && next.chain.length) {
            chain = next.chain;
            pos++;
          }
          cmd.args.push({ t: 'paren', pipe: { decl: [], assign: false, cmds: inner, where }, chain });
          break;
        }
        default:
          throw new TemplateError(`${where}: unexpected "${t.k}"`);
      }
    }
    if (cmds[cmds.length - 1].args.length === 0) throw new TemplateError(`${where}: missing value`);
    return cmds;
  };
  const cmds = parseCmds(false);
  if (pos !== toks.length) throw new TemplateError(`${where}: unexpected ")"`);
  return { decl, assign, cmds, where };
}

export function parseTemplate(src: string, name: string): ParsedTemplate {
  const items = splitActions(src, name);
  const defines = new Map<string, Node[]>();
  let i = 0;
  type Stop = { kind: 'end' } | { kind: 'else'; rest: Tok[]; where: string } | { kind: 'eof' };

  const parseList = (depth: number): { nodes: Node[]; stop: Stop } => {
    const nodes: Node[] = [];
    while (i < items.length) {
      const it = items[i++];
      if (it.kind === 'text') {
        if (it.v) nodes.push({ t: 'text', v: it.v });
        continue;
      }
      const where = `${name}:${it.line}`;
      const toks = lexAction(it.v, where);
      if (toks.length === 0) throw new TemplateError(`${where}: empty action`);
      const head = toks[0];
      const kw = head.k === 'ident' && KEYWORDS.has(head.v) ? head.v : null;
      if (kw === null) {
        nodes.push({ t: 'action', pipe: parsePipe(toks, where) });
        continue;
      }
      const rest = toks.slice(1);
      switch (kw) {
        case 'end':
          if (depth === 0) throw new TemplateError(`${where}: unexpected {{end}}`);
          return { nodes, stop: { kind: 'end' } };
        case 'else':
          if (depth === 0) throw new TemplateError(`${where}: unexpected {{else}}`);
          return { nodes, stop: { kind: 'else', rest, where } };
        case 'if':
        case 'with':
          nodes.push(parseBranch(kw, rest, where, depth));
          break;
        case 'range': {
          const pipe = parsePipe(rest, where);
          const body = parseList(depth + 1);
          let elseNodes: Node[] = [];
          if (body.stop.kind === 'else') {
            if (body.stop.rest.length) throw new TemplateError(`${where}: "else ..." after range`);
            const e = parseList(depth + 1);
            if (e.stop.kind !== 'end') throw new TemplateError(`${where}: range without {{end}}`);
            elseNodes = e.nodes;
          } else if (body.stop.kind !== 'end') throw new TemplateError(`${where}: range without {{end}}`);
          nodes.push({ t: 'range', pipe, then: body.nodes, else: elseNodes });
          break;
        }
        case 'define': {
          if (depth !== 0) throw new TemplateError(`${where}: define inside a block`);
          if (rest.length !== 1 || rest[0].k !== 'str') throw new TemplateError(`${where}: define needs a name`);
          const body = parseList(depth + 1);
          if (body.stop.kind !== 'end') throw new TemplateError(`${where}: define without {{end}}`);
          defines.set(rest[0].v, body.nodes);
          break;
        }
        case 'template': {
          if (rest.length < 1 || rest[0].k !== 'str') throw new TemplateError(`${where}: template needs a name`);
          nodes.push({ t: 'template', name: rest[0].v, pipe: rest.length > 1 ? parsePipe(rest.slice(1), where) : null, where });
          break;
        }
        default:
          throw new TemplateError(`${where}: {{${kw}}} is outside the supported subset`);
      }
    }
    if (depth !== 0) throw new TemplateError(`${name}: unexpected end of template (missing {{end}})`);
    return { nodes, stop: { kind: 'eof' } };
  };

  const parseBranch = (kw: 'if' | 'with', toks: Tok[], where: string, depth: number): Node => {
    const pipe = parsePipe(toks, where);
    const body = parseList(depth + 1);
    let elseNodes: Node[] = [];
    if (body.stop.kind === 'else') {
      const r = body.stop.rest;
      if (r.length && r[0].k === 'ident' && (r[0].v === 'if' || r[0].v === 'with')) {
        // `else if` / `else with` share the final {{end}}.
        elseNodes = [parseBranch(r[0].v, r.slice(1), body.stop.where, depth)];
      } else if (r.length) {
        throw new TemplateError(`${body.stop.where}: bad else`);
      } else {
        const e = parseList(depth + 1);
        if (e.stop.kind !== 'end') throw new TemplateError(`${where}: ${kw} without {{end}}`);
        elseNodes = e.nodes;
      }
    } else if (body.stop.kind !== 'end') throw new TemplateError(`${where}: ${kw} without {{end}}`);
    return { t: kw, pipe, then: body.nodes, else: elseNodes };
  };

  const { nodes } = parseList(0);
  return { name, nodes, defines };
}

// ---------------------------------------------------------------------------------------------
// Go semantics helpers

/** Go's template truth. */
export function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (v instanceof GoInt) return v.v !== 0;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (isDict(v)) return Object.keys(v).length > 0;
  return true;
}

/** Go's %v for a float64 (strconv 'g' with the shortest precision: exponent from 1e+06 / below 1e-04). */
export function formatFloat(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
  if (n === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(n)));
  const shortest = String(n);
  if (exp < -4 || exp >= 21) {
    const [m, e] = n.toExponential().split('e');
    const ei = Number(e);
    return `${m}e${ei < 0 ? '-' : '+'}${String(Math.abs(ei)).padStart(2, '0')}`;
  }
  if (exp >= 6) {
    // Go prints shortest-digit mantissa with an exponent: 1e+06, 1.5e+06, 1.23456789e+08.
    const [m, e] = n.toExponential().split('e');
    const ei = Number(e);
    return `${m}e+${String(ei).padStart(2, '0')}`;
  }
  return shortest;
}

/** fmt.Sprint-like rendering of a value in template output. */
export function goString(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (v instanceof GoInt) return String(v.v);
  if (typeof v === 'number') return formatFloat(v);
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (isDict(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${goString(v[k])}`).join(' ')}]`;
  return String(v);
}

/** Plain JSON-like data (GoInt unwrapped), for toYaml and for the caller. */
export function plain(v: unknown): unknown {
  if (v instanceof GoInt) return v.v;
  if (Array.isArray(v)) return v.map(plain);
  if (isDict(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function deepCopy(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(deepCopy);
  if (isDict(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deepCopy(x)]));
  return v;
}

type Kind = 'nil' | 'bool' | 'int' | 'float' | 'string' | 'other';
function kindOf(v: unknown): Kind {
  if (v === undefined || v === null) return 'nil';
  if (v instanceof GoInt) return 'int';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'float';
  if (typeof v === 'string') return 'string';
  return 'other';
}

function basic(v: unknown): unknown {
  return v instanceof GoInt ? v.v : v;
}

function compare(op: string, a: unknown, b: unknown): number {
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka === 'other' || kb === 'other') throw new TemplateError(`${op}: non-comparable type`);
  if (ka !== kb) {
    if (op === 'eq' && (ka === 'nil' || kb === 'nil')) return 1;
    throw new TemplateError(`${op}: incompatible types for comparison (${ka} and ${kb}; Helm values are float64, template literals int)`);
  }
  const x = basic(a) as number | string | boolean | null | undefined;
  const y = basic(b) as number | string | boolean | null | undefined;
  if (x === y) return 0;
  if (op !== 'eq' && op !== 'ne' && (ka === 'bool' || ka === 'nil')) throw new TemplateError(`${op}: invalid type for comparison`);
  return (x as number | string) < (y as number | string) ? -1 : 1;
}

/** Sprig's `empty`. */
function empty(v: unknown): boolean {
  return !truth(v);
}

function toInt(v: unknown): number {
  const b = basic(v);
  if (typeof b === 'number') return Math.trunc(b);
  if (typeof b === 'string') return Math.trunc(Number(b)) || 0;
  if (typeof b === 'boolean') return b ? 1 : 0;
  return 0;
}

function goQuote(s: string): string {
  return JSON.stringify(s).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function sprintf(format: string, args: unknown[]): string {
  let i = 0;
  return format.replace(/%([%sdvq])/g, (_m, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    switch (verb) {
      case 's':
      case 'v':
        return goString(a);
      case 'd':
        if (!(a instanceof GoInt)) throw new TemplateError(`printf %d of a non-int (${kindOf(a)}): Go prints %!d(...)`);
        return String(a.v);
      case 'q':
        return goQuote(goString(a));
      default:
        throw new TemplateError(`printf: verb %${verb} not supported`);
    }
  });
}

/**
 * Sprig's mustMergeOverwrite (mergo WithOverride) for the case the chart uses: maps are merged
 * recursively, any other value of the source replaces the destination's.
 */
function mergeOverwrite(dst: Dict, src: Dict): Dict {
  for (const [k, v] of Object.entries(src)) {
    if (isDict(v) && isDict(dst[k])) mergeOverwrite(dst[k] as Dict, v);
    else dst[k] = v;
  }
  return dst;
}

export function toYaml(v: unknown): string {
  const p = plain(v);
  if (p === undefined || p === null) return 'null';
  const text = YAML.stringify(p, { version: '1.1', sortMapEntries: true, lineWidth: 0, indentSeq: false, aliasDuplicateObjects: false });
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

function indent(n: number, s: string): string {
  const pad = ' '.repeat(n);
  return pad + s.replace(/\n/g, `\n${pad}`);
}

// ---------------------------------------------------------------------------------------------
// Evaluation

type Scope = Map<string, unknown>[];

export interface RenderOptions {
  /** 'zero' = Helm's default (a missing key is nil); 'error' = fail on any missing key. */
  missingKey?: 'zero' | 'error';
  /** Render only these files (paths relative to the chart), like `helm template --show-only`. */
  only?: string[];
}

export class TemplateSet {
  readonly templates = new Map<string, ParsedTemplate>();
  readonly defines = new Map<string, { nodes: Node[]; file: string }>();
  private depth = 0;

  constructor(private readonly opts: RenderOptions = {}) {}

  add(name: string, src: string): ParsedTemplate {
    const t = parseTemplate(src, name);
    this.templates.set(name, t);
    for (const [n, nodes] of t.defines) {
      if (this.defines.has(n)) throw new TemplateError(`${name}: template "${n}" defined twice`);
      this.defines.set(n, { nodes, file: name });
    }
    return t;
  }

  render(name: string, data: unknown): string {
    const t = this.templates.get(name);
    if (!t) throw new TemplateError(`no template ${name}`);
    return this.exec(t.nodes, data, [new Map([['', data]])]);
  }

  include(name: string, data: unknown): string {
    const d = this.defines.get(name);
    if (!d) throw new TemplateError(`include: no template "${name}"`);
    if (++this.depth > 100) throw new TemplateError(`include "${name}": recursion too deep`);
    try {
      return this.exec(d.nodes, data, [new Map([['', data]])]);
    } finally {
      this.depth--;
    }
  }

  private exec(nodes: Node[], dot: unknown, scope: Scope): string {
    let out = '';
    for (const n of nodes) {
      switch (n.t) {
        case 'text':
          out += n.v;
          break;
        case 'action': {
          const v = this.pipe(n.pipe, dot, scope);
          if (n.pipe.decl.length === 0) out += goString(v);
          break;
        }
        case 'if':
        case 'with': {
          const inner: Scope = [...scope, new Map()];
          const v = this.pipe(n.pipe, dot, inner);
          if (truth(v)) out += this.exec(n.then, n.t === 'with' ? v : dot, inner);
          else out += this.exec(n.else, dot, [...scope, new Map()]);
          break;
        }
        case 'range': {
          const inner: Scope = [...scope, new Map()];
          const p = { ...n.pipe, decl: [] };
          const v = this.pipe(p, dot, inner);
          let entries: [unknown, unknown][] = [];
          if (Array.isArray(v)) entries = v.map((x, i) => [new GoInt(i), x]);
          else if (isDict(v)) entries = Object.keys(v).sort().map((k) => [k, v[k]]);
          else if (v !== undefined && v !== null) throw new TemplateError(`${n.pipe.where}: range can't iterate over ${goString(v)}`);
          if (entries.length === 0) {
            out += this.exec(n.else, dot, [...scope, new Map()]);
            break;
          }
          for (const [k, x] of entries) {
            const s = new Map<string, unknown>();
            if (n.pipe.decl.length === 1) s.set(n.pipe.decl[0], x);
            else if (n.pipe.decl.length === 2) {
              s.set(n.pipe.decl[0], k);
              s.set(n.pipe.decl[1], x);
            }
            out += this.exec(n.then, x, [...inner, s]);
          }
          break;
        }
        case 'template':
          out += this.include(n.name, n.pipe ? this.pipe(n.pipe, dot, scope) : undefined);
          break;
      }
    }
    return out;
  }

  private pipe(p: Pipe, dot: unknown, scope: Scope): unknown {
    let v: unknown;
    let has = false;
    for (const cmd of p.cmds) {
      v = this.cmd(cmd, dot, scope, p.where, has ? { v } : null);
      has = true;
    }
    if (p.decl.length > 1) throw new TemplateError(`${p.where}: too many declarations`);
    if (p.decl.length === 1) {
      const name = p.decl[0];
      if (p.assign) {
        const s = [...scope].reverse().find((m) => m.has(name));
        if (!s) throw new TemplateError(`${p.where}: undefined variable $${name}`);
        s.set(name, v);
      } else scope[scope.length - 1].set(name, v);
    }
    return v;
  }

  private cmd(cmd: Cmd, dot: unknown, scope: Scope, where: string, final: { v: unknown } | null): unknown {
    const [head, ...rest] = cmd.args;
    if (head.t === 'ident') {
      const thunks = rest.map((a) => () => this.arg(a, dot, scope, where));
      if (final) thunks.push(() => final.v);
      return this.call(head.name, thunks, where);
    }
    if (rest.length) throw new TemplateError(`${where}: can't give arguments to a non-function`);
    if (final) throw new TemplateError(`${where}: can't give a pipeline value to a non-function`);
    return this.arg(head, dot, scope, where);
  }

  private arg(a: Arg, dot: unknown, scope: Scope, where: string): unknown {
    switch (a.t) {
      case 'str':
        return a.v;
      case 'num':
        return a.int ? new GoInt(a.v) : a.v;
      case 'bool':
        return a.v;
      case 'nil':
        return null;
      case 'field':
        return this.chain(dot, a.chain, where, '');
      case 'var': {
        const s = [...scope].reverse().find((m) => m.has(a.name));
        if (!s) throw new TemplateError(`${where}: undefined variable $${a.name}`);
        return this.chain(s.get(a.name), a.chain, where, `$${a.name}`);
      }
      case 'paren':
        return this.chain(this.pipe(a.pipe, dot, scope), a.chain, where, '(...)');
      case 'ident':
        return this.call(a.name, [], where);
    }
  }

  private chain(base: unknown, chain: string[], where: string, label: string): unknown {
    let v = base;
    let seen = label;
    for (const f of chain) {
      if (v === undefined || v === null) throw new TemplateError(`${where}: nil pointer evaluating interface {}.${f} (at ${seen || '.'})`);
      if (!isDict(v)) throw new TemplateError(`${where}: can't evaluate field ${f} in ${kindOf(v)} (at ${seen || '.'})`);
      if (!(f in v)) {
        if (structs.has(v)) throw new TemplateError(`${where}: can't evaluate field ${f} (at ${seen || '.'})`);
        if (this.opts.missingKey === 'error') throw new TemplateError(`${where}: map has no entry for key "${f}" (at ${seen || '.'})`);
        v = undefined;
      } else v = v[f];
      seen += `.${f}`;
    }
    return v;
  }

  private call(name: string, args: (() => unknown)[], where: string): unknown {
    const need = (n: number): unknown[] => {
      if (args.length !== n) throw new TemplateError(`${where}: ${name} wants ${n} arguments, got ${args.length}`);
      return args.map((f) => f());
    };
    const all = (): unknown[] => args.map((f) => f());
    const str = (v: unknown): string => goString(v);
    /** An `int` parameter of a Sprig function: a float64 (a Helm value) is refused, as by Go's reflection. */
    const int = (v: unknown): number => {
      if (!(v instanceof GoInt)) throw new TemplateError(`${where}: ${name}: wrong type for value; expected int; got ${kindOf(v) === 'float' ? 'float64' : kindOf(v)}`);
      return v.v;
    };
    switch (name) {
      case 'and': {
        let v: unknown;
        for (const f of args) {
          v = f();
          if (!truth(v)) return v;
        }
        return v;
      }
      case 'or': {
        let v: unknown;
        for (const f of args) {
          v = f();
          if (truth(v)) return v;
        }
        return v;
      }
      case 'not':
        return !truth(need(1)[0]);
      case 'eq': {
        const [a, ...bs] = all();
        if (bs.length === 0) throw new TemplateError(`${where}: eq needs two arguments`);
        return bs.some((b) => compare('eq', a, b) === 0);
      }
      case 'ne': {
        const [a, b] = need(2);
        return compare('ne', a, b) !== 0;
      }
      case 'lt':
      case 'le':
      case 'gt':
      case 'ge': {
        const [a, b] = need(2);
        const c = compare(name, a, b);
        return name === 'lt' ? c < 0 : name === 'le' ? c <= 0 : name === 'gt' ? c > 0 : c >= 0;
      }
      case 'len': {
        const [v] = need(1);
        if (typeof v === 'string') return new GoInt(Buffer.byteLength(v, 'utf8'));
        if (Array.isArray(v)) return new GoInt(v.length);
        if (isDict(v)) return new GoInt(Object.keys(v).length);
        throw new TemplateError(`${where}: len of ${kindOf(v)}`);
      }
      case 'include': {
        const [n, data] = need(2);
        if (typeof n !== 'string') throw new TemplateError(`${where}: include needs a template name`);
        return this.include(n, data);
      }
      case 'required': {
        const [msg, v] = need(2);
        if (v === undefined || v === null || v === '') throw new TemplateError(`${where}: execution error: ${str(msg)}`);
        return v;
      }
      case 'fail':
        throw new TemplateError(`${where}: execution error: ${str(need(1)[0])}`);
      case 'default': {
        const a = all();
        if (a.length < 1 || a.length > 2) throw new TemplateError(`${where}: default wants 1 or 2 arguments`);
        return a.length === 1 || empty(a[1]) ? a[0] : a[1];
      }
      case 'empty':
        return empty(need(1)[0]);
      case 'quote':
        return all().filter((v) => v !== undefined && v !== null).map((v) => goQuote(str(v))).join(' ');
      case 'squote':
        return all().filter((v) => v !== undefined && v !== null).map((v) => `'${str(v)}'`).join(' ');
      case 'toYaml':
        return toYaml(need(1)[0]);
      case 'toJson':
        return JSON.stringify(plain(need(1)[0]) ?? null);
      case 'indent': {
        const [n, s] = need(2);
        return indent(int(n), str(s));
      }
      case 'nindent': {
        const [n, s] = need(2);
        return `\n${indent(int(n), str(s))}`;
      }
      case 'printf': {
        const [f, ...rest] = all();
        return sprintf(str(f), rest);
      }
      case 'print':
        return all().map(str).join('');
      case 'trunc': {
        const [n, s0] = need(2);
        const c = int(n);
        const s = str(s0);
        if (c < 0 && s.length + c > 0) return s.slice(s.length + c);
        if (c >= 0 && s.length > c) return s.slice(0, c);
        return s;
      }
      case 'trimSuffix': {
        const [suf, s] = need(2).map(str);
        return suf && s.endsWith(suf) ? s.slice(0, -suf.length) : s;
      }
      case 'trimPrefix': {
        const [pre, s] = need(2).map(str);
        return pre && s.startsWith(pre) ? s.slice(pre.length) : s;
      }
      case 'trim':
        return str(need(1)[0]).trim();
      case 'replace': {
        const [from, to, s] = need(3).map(str);
        return s.split(from).join(to);
      }
      case 'lower':
        return str(need(1)[0]).toLowerCase();
      case 'upper':
        return str(need(1)[0]).toUpperCase();
      case 'contains': {
        const [sub, s] = need(2).map(str);
        return s.includes(sub);
      }
      case 'hasPrefix': {
        const [pre, s] = need(2).map(str);
        return s.startsWith(pre);
      }
      case 'join': {
        const [sep, list] = need(2);
        if (!Array.isArray(list)) throw new TemplateError(`${where}: join of a non-list`);
        return list.map(str).join(str(sep));
      }
      case 'b64enc':
        return Buffer.from(str(need(1)[0]), 'utf8').toString('base64');
      case 'sha256sum':
        return createHash('sha256').update(str(need(1)[0]), 'utf8').digest('hex');
      case 'toString':
        return str(need(1)[0]);
      case 'int':
        return new GoInt(toInt(need(1)[0]));
      case 'dict': {
        const a = all();
        if (a.length % 2) throw new TemplateError(`${where}: dict needs key/value pairs`);
        const d: Dict = {};
        for (let i = 0; i < a.length; i += 2) d[str(a[i])] = a[i + 1];
        return d;
      }
      case 'list':
        return all();
      case 'set': {
        const [d, k, v] = need(3);
        if (!isDict(d)) throw new TemplateError(`${where}: set on a non-dict`);
        d[str(k)] = v;
        return d;
      }
      case 'hasKey': {
        const [d, k] = need(2);
        if (!isDict(d)) throw new TemplateError(`${where}: hasKey on a non-dict`);
        return str(k) in d;
      }
      case 'deepCopy':
        return deepCopy(need(1)[0]);
      case 'mustMergeOverwrite': {
        const [dst, ...srcs] = all();
        if (!isDict(dst) || !srcs.every(isDict)) throw new TemplateError(`${where}: mustMergeOverwrite needs dicts`);
        for (const s of srcs) mergeOverwrite(dst, s as Dict);
        return dst;
      }
      case 'ternary': {
        const [a, b, c] = need(3);
        return truth(c) ? a : b;
      }
      case 'kindIs': {
        const [k, v] = need(2);
        const kind = v === undefined || v === null ? 'invalid' : Array.isArray(v) ? 'slice' : isDict(v) ? 'map' : v instanceof GoInt ? 'int' : typeof v === 'number' ? 'float64' : typeof v === 'string' ? 'string' : typeof v === 'boolean' ? 'bool' : 'other';
        return kind === str(k);
      }
      default:
        throw new TemplateError(`${where}: function "${name}" not defined (outside the supported subset)`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Charts

export interface Chart {
  dir: string;
  meta: Dict;
  values: Dict;
  /** templates/ files by path relative to the chart (`templates/statefulset.yaml`). */
  templates: Map<string, string>;
}

export function loadChart(dir: string): Chart {
  const meta = YAML.parse(fs.readFileSync(path.join(dir, 'Chart.yaml'), 'utf8')) as Dict;
  const values = (YAML.parse(fs.readFileSync(path.join(dir, 'values.yaml'), 'utf8'), { version: '1.1' }) ?? {}) as Dict;
  const templates = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.posix.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else templates.set(r, fs.readFileSync(path.join(dir, r), 'utf8'));
    }
  };
  walk('templates');
  return { dir, meta, values, templates };
}

/** Helm's coalescing of user values over the chart's: maps merge, anything else replaces, null deletes. */
export function coalesce(base: Dict, over: Dict): Dict {
  const out = deepCopy(base) as Dict;
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isDict(v) && isDict(out[k])) out[k] = coalesce(out[k] as Dict, v);
    else out[k] = deepCopy(v);
  }
  return out;
}

export interface Release {
  name: string;
  namespace: string;
}

export interface Rendered {
  values: Dict;
  /** Rendered text by template path, for every file not starting with `_` (NOTES.txt included). */
  files: Map<string, string>;
}

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** Renders every template of the chart with the chart's values coalesced with `overrides` (in order). */
export function renderChart(chart: Chart, overrides: Dict[] = [], release: Release = { name: 'gw', namespace: 'research' }, opts: RenderOptions = {}): Rendered {
  const values = overrides.reduce((acc, o) => coalesce(acc, o), chart.values);
  const set = new TemplateSet(opts);
  const name = String(chart.meta.name);
  for (const [rel, src] of chart.templates) set.add(`${name}/${rel}`, src);
  const struct = <T extends object>(o: T): T => {
    structs.add(o);
    return o;
  };
  const chartObj = struct(Object.fromEntries(Object.entries(chart.meta).map(([k, v]) => [capitalize(k), v])));
  for (const f of ['Name', 'Version', 'AppVersion', 'Description', 'Type', 'KubeVersion']) if (!(f in chartObj)) (chartObj as Dict)[f] = '';
  const files = new Map<string, string>();
  for (const rel of chart.templates.keys()) {
    if (path.posix.basename(rel).startsWith('_')) continue;
    if (opts.only && !opts.only.includes(rel)) continue;
    const data = {
      Values: values,
      Release: struct({ Name: release.name, Namespace: release.namespace, Service: 'Helm', IsInstall: true, IsUpgrade: false, Revision: new GoInt(1) }),
      Chart: chartObj,
      Capabilities: struct({ KubeVersion: struct({ Version: 'v1.30.0', Major: '1', Minor: '30' }) }),
      Template: struct({ Name: `${name}/${rel}`, BasePath: `${name}/templates` }),
    };
    files.set(rel, set.render(`${name}/${rel}`, data));
  }
  return { values, files };
}

export interface K8sObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: Dict;
  spec?: Dict;
  data?: Dict;
  [key: string]: unknown;
}

/** The objects of the rendered manifests (YAML 1.1 as Helm's parser reads it); NOTES.txt is not a manifest. */
export function manifests(r: Rendered): { file: string; obj: K8sObject }[] {
  const out: { file: string; obj: K8sObject }[] = [];
  for (const [file, text] of r.files) {
    if (!/\.(ya?ml|json)$/.test(file)) continue;
    for (const doc of YAML.parseAllDocuments(text, { version: '1.1', uniqueKeys: true })) {
      if (doc.errors.length) throw new TemplateError(`${file}: rendered YAML is invalid: ${doc.errors.map((e) => e.message).join('; ')}\n${text}`);
      const obj = doc.toJS() as unknown;
      if (obj === null || obj === undefined) continue;
      if (!isDict(obj)) throw new TemplateError(`${file}: a rendered document is not an object`);
      out.push({ file, obj: obj as K8sObject });
    }
  }
  return out;
}
