/**
 * A small Dockerfile reader for the subset our Dockerfile uses, so that
 * test/deploy/container.test.ts can replay what the image build and `docker run` do without
 * Docker: line continuations, comments and parser directives, ARG before FROM with defaults
 * (substituted into FROM), named stages, flags (`--from=`, `--mount=`, HEALTHCHECK's `--interval=`),
 * exec form (JSON arrays) and shell form, ENV in `K=V` (and legacy `K V`) form.
 * Anything outside that subset throws, so that the test cannot silently replay less than the
 * Dockerfile does. Plus a .dockerignore matcher (moby patternmatcher semantics for `*`, `?`,
 * `**`, `!` exceptions, a pattern also excluding everything below a matched folder).
 */

export interface Instruction {
  /** Upper-case keyword: FROM, COPY, RUN, ... */
  keyword: string;
  /** `--name=value` flags before the arguments. */
  flags: Record<string, string>;
  /** The arguments after the flags, as written (shell form). */
  rest: string;
  /** Exec form (a JSON array), when written that way. */
  exec?: string[];
  /** 1-based line of the instruction's first line. */
  line: number;
}

export interface Stage {
  /** `FROM image AS name`; undefined when unnamed. */
  name?: string;
  /** The image after ARG substitution. */
  image: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

const KNOWN = new Set(['FROM', 'ARG', 'ENV', 'WORKDIR', 'COPY', 'RUN', 'USER', 'VOLUME', 'EXPOSE', 'HEALTHCHECK', 'STOPSIGNAL', 'ENTRYPOINT', 'CMD', 'LABEL']);

export function parseDockerfile(text: string): Dockerfile {
  const logical: { text: string; line: number }[] = [];
  let current: { text: string; line: number } | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    // Comments (and parser directives) are whole lines; inside a continuation they are dropped.
    if (/^\s*#/.test(line)) return;
    if (current === null) {
      if (line.trim() === '') return;
      current = { text: '', line: i + 1 };
    }
    if (/\\\s*$/.test(line)) {
      current.text += `${line.replace(/\\\s*$/, '')} `;
    } else {
      current.text += line;
      logical.push(current);
      current = null;
    }
  });
  if (current !== null) throw new Error('Dockerfile ends inside a line continuation');

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const { text: t, line } of logical) {
    const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(t);
    if (!m) throw new Error(`Dockerfile line ${line}: cannot read "${t}"`);
    const keyword = m[1].toUpperCase();
    if (!KNOWN.has(keyword)) throw new Error(`Dockerfile line ${line}: ${keyword} is outside the subset test/deploy/dockerfile.ts replays`);
    let rest = m[2].trim();
    const flags: Record<string, string> = {};
    for (;;) {
      const f = /^--([a-z-]+)=(\S+)\s*/.exec(rest);
      if (!f) break;
      flags[f[1]] = f[2];
      rest = rest.slice(f[0].length);
    }
    const ins: Instruction = { keyword, flags, rest, line };
    if (rest.startsWith('[')) {
      try {
        const arr = JSON.parse(rest) as unknown;
        if (Array.isArray(arr) && arr.every((s) => typeof s === 'string')) ins.exec = arr as string[];
      } catch {
        /* shell form after all */
      }
    }
    if (keyword === 'FROM') {
      const fm = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!fm) throw new Error(`Dockerfile line ${line}: cannot read FROM "${rest}"`);
      stages.push({ image: substitute(fm[1], globalArgs), name: fm[2], instructions: [] });
      continue;
    }
    if (stages.length === 0) {
      if (keyword !== 'ARG') throw new Error(`Dockerfile line ${line}: only ARG may come before FROM`);
      const am = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(rest);
      if (!am) throw new Error(`Dockerfile line ${line}: cannot read ARG "${rest}"`);
      globalArgs[am[1]] = unquote(am[2] ?? '');
      continue;
    }
    stages[stages.length - 1].instructions.push(ins);
  }
  if (stages.length === 0) throw new Error('Dockerfile has no FROM');
  return { globalArgs, stages };
}

function substitute(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    if (!(name in vars)) throw new Error(`Dockerfile: undefined ARG ${name}`);
    return vars[name];
  });
}

function unquote(s: string): string {
  const t = s.trim();
  return /^(["']).*\1$/.test(t) ? t.slice(1, -1) : t;
}

/** Splits a shell-form argument list on whitespace (no quotes are used in our Dockerfile). */
export function words(s: string): string[] {
  return s.trim().split(/\s+/).filter(Boolean);
}

/** ENV of a stage, in order (later wins), `K=V K2=V2` or legacy `K V`. */
export function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(ins.rest)) {
      for (const m of ins.rest.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|\S*)/g)) env[m[1]] = unquote(m[2]);
    } else {
      const [k, ...v] = words(ins.rest);
      env[k] = v.join(' ');
    }
  }
  return env;
}

/** WORKDIR in effect at instruction index `upto` (exclusive) of a stage; `/` before any. */
export function workdirAt(stage: Stage, upto = stage.instructions.length): string {
  let dir = '/';
  for (const ins of stage.instructions.slice(0, upto)) {
    if (ins.keyword !== 'WORKDIR') continue;
    dir = ins.rest.startsWith('/') ? ins.rest : `${dir.replace(/\/$/, '')}/${ins.rest}`;
  }
  return dir;
}

/** The last instruction of a keyword in a stage (USER, ENTRYPOINT, CMD, HEALTHCHECK...). */
export function last(stage: Stage, keyword: string): Instruction | undefined {
  return [...stage.instructions].reverse().find((i) => i.keyword === keyword);
}

export function all(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

/** ENTRYPOINT or CMD as argv: exec form as is, shell form through /bin/sh -c (as Docker does). */
export function argv(ins: Instruction | undefined): string[] {
  if (!ins) return [];
  return ins.exec ?? ['/bin/sh', '-c', ins.rest];
}

/** VOLUME paths (JSON array or space-separated), of every VOLUME instruction. */
export function volumes(stage: Stage): string[] {
  return all(stage, 'VOLUME').flatMap((i) => i.exec ?? words(i.rest));
}

/** EXPOSE ports as numbers (`8080` or `8080/tcp`). */
export function exposed(stage: Stage): number[] {
  return all(stage, 'EXPOSE').flatMap((i) => words(i.rest)).map((p) => Number(p.split('/')[0]));
}

/** COPY's sources and destination. */
export function copyArgs(ins: Instruction): { sources: string[]; dest: string } {
  const parts = ins.exec ?? words(ins.rest);
  if (parts.length < 2) throw new Error(`Dockerfile line ${ins.line}: COPY needs a source and a destination`);
  return { sources: parts.slice(0, -1), dest: parts[parts.length - 1] };
}

/** HEALTHCHECK's command as argv (exec form after `CMD`, or shell form through /bin/sh -c). */
export function healthcheckArgv(ins: Instruction): string[] {
  const m = /^CMD\s+(.*)$/s.exec(ins.rest);
  if (!m) throw new Error(`Dockerfile line ${ins.line}: HEALTHCHECK without CMD`);
  const cmd = m[1].trim();
  if (cmd.startsWith('[')) return JSON.parse(cmd) as string[];
  return ['/bin/sh', '-c', cmd];
}

/** A .dockerignore: is a context-relative path (forward slashes) excluded from the build context? */
export function dockerignore(text: string): (rel: string) => boolean {
  const rules = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => {
    const negate = l.startsWith('!');
    const pattern = (negate ? l.slice(1) : l).trim().replace(/^\/+/, '').replace(/\/+$/, '');
    return { negate, re: globToRegExp(pattern) };
  });
  return (rel: string) => {
    const parts = rel.split('/');
    // A path is excluded when the last rule matching it, or any folder above it, excludes it.
    let excluded = false;
    for (const r of rules) {
      let hit = false;
      for (let n = parts.length; n >= 1 && !hit; n--) hit = r.re.test(parts.slice(0, n).join('/'));
      if (hit) excluded = !r.negate;
    }
    return excluded;
  };
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` matches zero or more folders; a trailing `**` anything.
      if (glob[i + 2] === '/') { re += '(?:.*/)?'; i += 2; } else { re += '.*'; i += 1; }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
