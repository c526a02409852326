/**
 * Static checks of the Helm chart in helm/deid-gateway (helm itself is not available here).
 * Each check returns a list of problems (empty = passes), so a test can show it both passing
 * on the real chart and failing on a broken copy.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { Chart, Dict, K8sObject, Node, Pipe, TemplateSet } from './helm-template';
import { Schema, validate } from './helm-jsonschema';

const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------
// Check 1: every .Values path a template uses exists in values.yaml (and every value is used)

export interface ValuesRef {
  where: string;
  path: string[];
}

type Desc = { k: 'root' } | { k: 'values'; path: string[] } | { k: 'unknown' };

const BUILTINS: Record<string, Set<string> | null> = {
  Release: new Set(['Name', 'Namespace', 'Service', 'IsInstall', 'IsUpgrade', 'Revision']),
  Capabilities: null,
  Template: new Set(['Name', 'BasePath']),
  Chart: null, // checked against Chart.yaml
};

/**
 * Walks the parsed templates with the scope of `.` tracked (the root, a known place in .Values,
 * or unknown: a range element, a function result), and collects every .Values path used, also
 * through `$`, variables, `with` and parenthesised pipelines. Named templates are walked with the
 * root as `.`, so every include must pass the root (`.` at the root, or `$`): that is checked too,
 * as is the absence of dynamic look-ups (`index .Values ...`), so the collected set is exact.
 */
export function collectValuesRefs(chart: Chart): { refs: ValuesRef[]; problems: string[] } {
  const set = new TemplateSet();
  const name = String(chart.meta.name);
  for (const [rel, src] of chart.templates) set.add(`${name}/${rel}`, src);
  const chartFields = new Set(Object.keys(chart.meta).map((k) => k.charAt(0).toUpperCase() + k.slice(1)));
  const refs: ValuesRef[] = [];
  const problems: string[] = [];
  type Scope = Map<string, Desc>[];

  const resolve = (base: Desc, chain: string[], where: string): Desc => {
    if (chain.length === 0) return base;
    if (base.k === 'unknown') return base;
    if (base.k === 'values') {
      const p = [...base.path, ...chain];
      refs.push({ where, path: p });
      return { k: 'values', path: p };
    }
    const [top, ...rest] = chain;
    if (top === 'Values') {
      refs.push({ where, path: rest });
      return { k: 'values', path: rest };
    }
    if (!(top in BUILTINS)) {
      problems.push(`${where}: .${chain.join('.')}: no such top-level object`);
    } else if (top === 'Chart') {
      if (rest.length && !chartFields.has(rest[0])) problems.push(`${where}: .Chart.${rest[0]} is not in Chart.yaml`);
    } else if (rest.length && BUILTINS[top] && !BUILTINS[top]!.has(rest[0])) {
      problems.push(`${where}: .${top}.${rest[0]} does not exist`);
    }
    return { k: 'unknown' };
  };

  const lookupVar = (scope: Scope, n: string, where: string): Desc => {
    if (n === '') return { k: 'root' };
    for (let i = scope.length - 1; i >= 0; i--) if (scope[i].has(n)) return scope[i].get(n)!;
    problems.push(`${where}: undefined variable $${n}`);
    return { k: 'unknown' };
  };

  const pipe = (p: Pipe, dot: Desc, scope: Scope, bind = true): Desc => {
    let result: Desc = { k: 'unknown' };
    for (const cmd of p.cmds) {
      const [head, ...args] = cmd.args;
      if (head.t === 'ident') {
        const descs = args.map((a) => arg(a, dot, scope, p.where));
        if ((head.name === 'include' || head.name === 'template') && !(descs[1]?.k === 'root')) {
          problems.push(`${p.where}: include ${args[0]?.t === 'str' ? JSON.stringify(args[0].v) : ''} must pass the root context (. at the top, or $)`);
        }
        if (head.name === 'index' && descs.some((d) => d.k !== 'unknown')) problems.push(`${p.where}: index into .Values is a dynamic look-up (use a field path)`);
        result = { k: 'unknown' };
      } else {
        result = arg(head, dot, scope, p.where);
      }
    }
    if (bind && p.decl.length === 1) {
      const n = p.decl[0];
      if (p.assign) {
        const s = [...scope].reverse().find((m) => m.has(n));
        if (s) s.set(n, { k: 'unknown' }); // re-assigned: no longer a known place
      } else scope[scope.length - 1].set(n, result);
    }
    return result;
  };

  const arg = (a: Pipe['cmds'][number]['args'][number], dot: Desc, scope: Scope, where: string): Desc => {
    switch (a.t) {
      case 'field':
        return resolve(dot, a.chain, where);
      case 'var':
        return resolve(lookupVar(scope, a.name, where), a.chain, where);
      case 'paren':
        return resolve(pipe(a.pipe, dot, scope), a.chain, where);
      default:
        return { k: 'unknown' };
    }
  };

  const walk = (nodes: Node[], dot: Desc, scope: Scope): void => {
    for (const n of nodes) {
      switch (n.t) {
        case 'text':
          break;
        case 'action':
          pipe(n.pipe, dot, scope);
          break;
        case 'if':
        case 'with': {
          const inner: Scope = [...scope, new Map()];
          const d = pipe(n.pipe, dot, inner);
          walk(n.then, n.t === 'with' ? d : dot, inner);
          walk(n.else, dot, [...scope, new Map()]);
          break;
        }
        case 'range': {
          const inner: Scope = [...scope, new Map()];
          pipe(n.pipe, dot, inner, false);
          const vars = new Map<string, Desc>(n.pipe.decl.map((v) => [v, { k: 'unknown' }]));
          walk(n.then, { k: 'unknown' }, [...inner, vars]);
          walk(n.else, dot, [...scope, new Map()]);
          break;
        }
        case 'template':
          if (!n.pipe || pipe(n.pipe, dot, scope).k !== 'root') problems.push(`${n.where}: template "${n.name}" must pass the root context`);
          break;
      }
    }
  };

  for (const t of set.templates.values()) {
    walk(t.nodes, { k: 'root' }, [new Map()]);
    for (const nodes of t.defines.values()) walk(nodes, { k: 'root' }, [new Map()]);
  }

  // Cross-check against a plain text search, so a parser slip cannot hide a reference.
  const found = new Set(refs.map((r) => r.path.join('.')));
  for (const [rel, src] of chart.templates) {
    const text = src.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
    for (const m of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      const p = m[1].slice(1);
      if (!found.has(p)) problems.push(`${rel}: .Values.${p} appears in the text but the template walk did not see it`);
    }
  }
  return { refs, problems };
}

function has(values: unknown, p: string[]): { ok: boolean; at: string[]; keys: string[] } {
  let v = values;
  for (let i = 0; i < p.length; i++) {
    if (!isDict(v) || !(p[i] in v)) return { ok: false, at: p.slice(0, i), keys: isDict(v) ? Object.keys(v) : [] };
    v = v[p[i]];
  }
  return { ok: true, at: p, keys: [] };
}

function leafPaths(v: unknown, at: string[] = []): string[][] {
  if (!isDict(v) || Object.keys(v).length === 0) return [at];
  return Object.entries(v).flatMap(([k, x]) => leafPaths(x, [...at, k]));
}

/** Check 1: every .Values path in templates/ exists in values.yaml; every value in values.yaml is used. */
export function checkValuesRefs(chart: Chart): string[] {
  const { refs, problems } = collectValuesRefs(chart);
  const out = [...problems];
  for (const r of refs) {
    const h = has(chart.values, r.path);
    if (!h.ok) out.push(`${r.where}: .Values.${r.path.join('.')} is not in values.yaml (${h.at.length ? `.Values.${h.at.join('.')}` : '.Values'} has ${h.keys.join(', ') || 'no keys'})`);
  }
  for (const leaf of leafPaths(chart.values)) {
    const used = refs.some((r) => r.path.length <= leaf.length && r.path.every((s, i) => s === leaf[i]));
    if (!used) out.push(`values.yaml: ${leaf.join('.')} is used by no template`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Check 2: values validate against values.schema.json

export function readSchema(chart: Chart): Schema {
  return JSON.parse(fs.readFileSync(path.join(chart.dir, 'values.schema.json'), 'utf8')) as Schema;
}

export function checkValuesSchema(schema: Schema, values: unknown): string[] {
  const out: string[] = [];
  if (!isDict(schema) || schema.$schema !== 'http://json-schema.org/draft-07/schema#') out.push('values.schema.json: $schema must be draft-07 (what helm validates)');
  return [...out, ...validate(schema, values)];
}

// ---------------------------------------------------------------------------------------------
// Check 3: kinds and apiVersions are current

/** The served, non-deprecated apiVersion of each kind the chart may render (Kubernetes 1.27+). */
export const CURRENT_API: Record<string, string> = {
  StatefulSet: 'apps/v1',
  Deployment: 'apps/v1',
  DaemonSet: 'apps/v1',
  Service: 'v1',
  ConfigMap: 'v1',
  Secret: 'v1',
  ServiceAccount: 'v1',
  PersistentVolumeClaim: 'v1',
  PodDisruptionBudget: 'policy/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
  Ingress: 'networking.k8s.io/v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
  Job: 'batch/v1',
  CronJob: 'batch/v1',
  ServiceMonitor: 'monitoring.coreos.com/v1',
  PodMonitor: 'monitoring.coreos.com/v1',
};

/** API groups/versions removed from Kubernetes (or superseded), for a clear message. */
export const REMOVED_API = new Set([
  'extensions/v1beta1', 'apps/v1beta1', 'apps/v1beta2', 'policy/v1beta1', 'networking.k8s.io/v1beta1',
  'autoscaling/v2beta1', 'autoscaling/v2beta2', 'batch/v1beta1', 'batch/v2alpha1', 'rbac.authorization.k8s.io/v1beta1',
  'rbac.authorization.k8s.io/v1alpha1', 'storage.k8s.io/v1beta1', 'scheduling.k8s.io/v1beta1', 'monitoring.coreos.com/v1alpha1',
]);

function apiProblem(where: string, apiVersion: unknown, kind: unknown): string | null {
  if (typeof kind !== 'string' || typeof apiVersion !== 'string') return `${where}: apiVersion and kind must be plain strings`;
  const current = CURRENT_API[kind];
  if (REMOVED_API.has(apiVersion)) return `${where}: ${kind} ${apiVersion} is removed/deprecated${current ? `; use ${current}` : ''}`;
  if (!current) return `${where}: kind ${kind} is not in the list of current kinds`;
  if (current !== apiVersion) return `${where}: ${kind} must be ${current}, is ${apiVersion}`;
  return null;
}

/** Check 3, on rendered objects (with the nested volumeClaimTemplates) and on the template text (branches not rendered). */
export function checkApiVersions(objs: { file: string; obj: K8sObject }[], chart?: Chart): string[] {
  const out: string[] = [];
  for (const { file, obj } of objs) {
    const p = apiProblem(`${file} ${String(obj.kind)} ${String(obj.metadata?.name)}`, obj.apiVersion, obj.kind);
    if (p) out.push(p);
    const vcts = (obj.spec?.volumeClaimTemplates ?? []) as K8sObject[];
    for (const v of vcts) {
      if (v.apiVersion === undefined && v.kind === undefined) continue;
      const q = apiProblem(`${file} volumeClaimTemplate ${String(v.metadata?.name)}`, v.apiVersion, v.kind);
      if (q) out.push(q);
    }
  }
  if (chart) {
    for (const [rel, src] of chart.templates) {
      const lines = src.split('\n');
      lines.forEach((line, i) => {
        const m = /^\s*(?:- )?apiVersion:\s*(.+?)\s*$/.exec(line);
        if (!m) return;
        if (m[1].includes('{{')) {
          out.push(`${rel}:${i + 1}: apiVersion is computed (${m[1]}); keep it literal so it can be checked`);
          return;
        }
        const kindLine = lines.slice(i + 1, i + 3).map((l) => /^\s*kind:\s*(.+?)\s*$/.exec(l)).find(Boolean);
        if (!kindLine) {
          out.push(`${rel}:${i + 1}: apiVersion without a kind on the next line`);
          return;
        }
        const p = apiProblem(`${rel}:${i + 1}`, m[1], kindLine[1]);
        if (p) out.push(p);
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Check 4: the ConfigMap's config.yaml is a valid gateway config (the gateway's own loader)

export function find(objs: { obj: K8sObject }[], kind: string, pred: (o: K8sObject) => boolean = () => true): K8sObject[] {
  return objs.map((o) => o.obj).filter((o) => o.kind === kind && pred(o));
}

export function configText(objs: { obj: K8sObject }[]): string {
  const cms = find(objs, 'ConfigMap');
  if (cms.length !== 1) throw new Error(`expected one ConfigMap, found ${cms.length}`);
  const text = cms[0].data?.['config.yaml'];
  if (typeof text !== 'string') throw new Error('the ConfigMap has no config.yaml string');
  return text;
}

/** Check 4: loads config.yaml exactly as `deid-gateway serve --config` does (YAML, env overrides off, zod). */
export function checkGatewayConfig(objs: { obj: K8sObject }[]): { config: Config | null; problems: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-helm-'));
  try {
    const file = path.join(dir, 'config.yaml');
    fs.writeFileSync(file, configText(objs));
    return { config: loadConfig(file, {}).config, problems: [] };
  } catch (err) {
    if (err instanceof ConfigError) return { config: null, problems: [err.message] };
    throw err;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Check 5: pod security settings and probes

interface Container {
  name: string;
  ports?: { name: string; containerPort: number }[];
  securityContext?: Dict;
  livenessProbe?: Dict;
  readinessProbe?: Dict;
  startupProbe?: Dict;
  resources?: { requests?: Dict; limits?: Dict };
  volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
  args?: string[];
  command?: string[];
}

interface PodSpec {
  securityContext?: Dict;
  containers: Container[];
  volumes?: ({ name: string } & Dict)[];
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
}

export function statefulSet(objs: { obj: K8sObject }[]): K8sObject {
  const s = find(objs, 'StatefulSet');
  if (s.length !== 1) throw new Error(`expected one StatefulSet, found ${s.length}`);
  return s[0];
}

function podOf(sts: K8sObject): { labels: Dict; annotations: Dict; spec: PodSpec } {
  const t = sts.spec?.template as { metadata?: { labels?: Dict; annotations?: Dict }; spec: PodSpec };
  return { labels: t.metadata?.labels ?? {}, annotations: t.metadata?.annotations ?? {}, spec: t.spec };
}

function probeProblem(c: Container, probe: 'livenessProbe' | 'readinessProbe' | 'startupProbe', pathWanted: string): string[] {
  const p = c[probe];
  if (!p) return [`container ${c.name}: no ${probe}`];
  const g = p.httpGet as { path?: string; port?: unknown } | undefined;
  if (!g) return [`container ${c.name}: ${probe} is not an httpGet`];
  const out: string[] = [];
  if (g.path !== pathWanted) out.push(`container ${c.name}: ${probe} must GET ${pathWanted}, gets ${String(g.path)}`);
  if (g.port !== 'http') out.push(`container ${c.name}: ${probe} must use the http port, uses ${String(g.port)}`);
  return out;
}

/**
 * Check 5: non-root, read-only root FS, no privilege escalation, no capabilities, seccomp, probes
 * (liveness and startup GET /healthz, readiness GET `readinessPath`, on the http port), resources.
 */
export function checkPodSecurity(objs: { obj: K8sObject }[], readinessPath: '/readyz' | '/healthz' = '/readyz'): string[] {
  const out: string[] = [];
  const { spec } = podOf(statefulSet(objs));
  const psc = spec.securityContext ?? {};
  if (psc.runAsNonRoot !== true) out.push('pod: securityContext.runAsNonRoot must be true');
  if (typeof psc.runAsUser !== 'number' || psc.runAsUser === 0) out.push('pod: securityContext.runAsUser must be a non-zero UID');
  if (typeof psc.fsGroup !== 'number') out.push('pod: securityContext.fsGroup must be set (the data volume is written by a non-root user)');
  if ((psc.seccompProfile as Dict | undefined)?.type !== 'RuntimeDefault') out.push('pod: securityContext.seccompProfile.type must be RuntimeDefault');
  if (spec.automountServiceAccountToken !== false) out.push('pod: automountServiceAccountToken must be false');
  if (spec.containers.length === 0) out.push('pod: no containers');
  for (const c of spec.containers) {
    const sc = c.securityContext ?? {};
    if (sc.readOnlyRootFilesystem !== true) out.push(`container ${c.name}: securityContext.readOnlyRootFilesystem must be true`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`container ${c.name}: securityContext.allowPrivilegeEscalation must be false`);
    if (sc.privileged === true) out.push(`container ${c.name}: must not be privileged`);
    const caps = (sc.capabilities ?? {}) as { drop?: string[]; add?: string[] };
    if (!caps.drop?.includes('ALL')) out.push(`container ${c.name}: securityContext.capabilities.drop must include ALL`);
    if (caps.add?.length) out.push(`container ${c.name}: must add no capabilities`);
    if (sc.runAsNonRoot === false || sc.runAsUser === 0) out.push(`container ${c.name}: must not run as root`);
    if (sc.seccompProfile && (sc.seccompProfile as Dict).type !== 'RuntimeDefault') out.push(`container ${c.name}: seccompProfile must stay RuntimeDefault`);
    out.push(...probeProblem(c, 'livenessProbe', '/healthz'), ...probeProblem(c, 'readinessProbe', readinessPath));
    if (c.startupProbe) out.push(...probeProblem(c, 'startupProbe', '/healthz'));
    if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory) out.push(`container ${c.name}: resources.requests.cpu and .memory must be set`);
    if (!c.resources?.limits?.memory) out.push(`container ${c.name}: resources.limits.memory must be set`);
    if (!(c.volumeMounts ?? []).some((m) => m.mountPath === '/tmp')) out.push(`container ${c.name}: /tmp must be a writable volume (read-only root FS)`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Wiring: the objects and the gateway config fit together

const subset = (want: Dict | undefined, have: Dict): boolean => !!want && Object.keys(want).length > 0 && Object.entries(want).every(([k, v]) => have[k] === v);

export function checkWiring(objs: { obj: K8sObject }[], config: Config): string[] {
  const out: string[] = [];
  const sts = statefulSet(objs);
  const pod = podOf(sts);
  const c = pod.spec.containers[0];
  const portByName = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]));

  // Ports and listen addresses.
  if (portByName.get('dimse') !== config.dimse.port) out.push(`container port dimse ${portByName.get('dimse')} != config dimse.port ${config.dimse.port}`);
  if (portByName.get('http') !== config.api.port) out.push(`container port http ${portByName.get('http')} != config api.port ${config.api.port}`);
  if (config.dimse.host !== '0.0.0.0' || config.api.host !== '0.0.0.0') out.push('the gateway must listen on 0.0.0.0 in a pod (dimse.host, api.host)');
  if (!config.api.enabled) out.push('api.enabled must be true: the probes use it');
  const args = (c.args ?? []).join(' ');
  if (args !== 'serve --config /etc/deid-gateway/config.yaml') out.push(`container args "${args}", not "serve --config /etc/deid-gateway/config.yaml"`);

  // Services, selectors, ports.
  const services = find(objs, 'Service');
  for (const s of services) {
    const sel = s.spec?.selector as Dict | undefined;
    if (!subset(sel, pod.labels)) out.push(`Service ${String(s.metadata?.name)}: selector does not select the pods`);
    for (const p of (s.spec?.ports ?? []) as { name: string; targetPort: unknown; port: number }[]) {
      if (typeof p.targetPort !== 'string' || !portByName.has(p.targetPort)) out.push(`Service ${String(s.metadata?.name)}: port ${p.name} targets ${String(p.targetPort)}, not a named container port`);
    }
  }
  const headless = services.find((s) => s.metadata?.name === sts.spec?.serviceName);
  if (!headless || headless.spec?.clusterIP !== 'None') out.push(`StatefulSet serviceName ${String(sts.spec?.serviceName)} is not a headless Service of the chart`);
  const dimseSvc = services.filter((s) => ((s.spec?.ports ?? []) as { targetPort: unknown }[]).some((p) => p.targetPort === 'dimse') && s.spec?.clusterIP !== 'None');
  if (dimseSvc.length !== 1) out.push(`expected one DIMSE Service, found ${dimseSvc.length}`);
  const httpSvc = services.filter((s) => ((s.spec?.ports ?? []) as { targetPort: unknown }[]).some((p) => p.targetPort === 'http') && s.spec?.clusterIP !== 'None');
  if (httpSvc.length !== 1 || httpSvc[0].spec?.type !== 'ClusterIP') out.push('expected one ClusterIP HTTP Service');

  // PodDisruptionBudget and ServiceMonitor select what they should.
  for (const pdb of find(objs, 'PodDisruptionBudget')) {
    if (!subset((pdb.spec?.selector as Dict | undefined)?.matchLabels as Dict, pod.labels)) out.push('PodDisruptionBudget: selector does not select the pods');
    if (('minAvailable' in (pdb.spec ?? {})) === ('maxUnavailable' in (pdb.spec ?? {}))) out.push('PodDisruptionBudget: exactly one of minAvailable and maxUnavailable');
  }
  for (const sm of find(objs, 'ServiceMonitor')) {
    const sel = (sm.spec?.selector as Dict | undefined)?.matchLabels as Dict | undefined;
    const targets = services.filter((s) => subset(sel, (s.metadata?.labels ?? {}) as Dict));
    if (targets.length !== 1 || targets[0] !== httpSvc[0]) out.push(`ServiceMonitor selects ${targets.length} Services, must select exactly the HTTP Service`);
    for (const e of (sm.spec?.endpoints ?? []) as { port?: string; path?: string }[]) {
      if (!((targets[0]?.spec?.ports ?? []) as { name: string }[]).some((p) => p.name === e.port)) out.push(`ServiceMonitor endpoint port ${String(e.port)} is not a port of the HTTP Service`);
      if (e.path !== '/metrics') out.push('ServiceMonitor must scrape /metrics');
    }
  }

  // Volumes: config, secrets, claims.
  const volumes = new Map((pod.spec.volumes ?? []).map((v) => [v.name, v]));
  const claims = new Set(((sts.spec?.volumeClaimTemplates ?? []) as K8sObject[]).map((v) => String(v.metadata?.name)));
  const mounts = c.volumeMounts ?? [];
  for (const m of mounts) if (!volumes.has(m.name) && !claims.has(m.name)) out.push(`volumeMount ${m.mountPath}: no volume or claim "${m.name}"`);
  const cm = find(objs, 'ConfigMap')[0];
  const cfgMount = mounts.find((m) => m.mountPath === '/etc/deid-gateway/config.yaml');
  const cfgVol = cfgMount && (volumes.get(cfgMount.name) as { configMap?: { name?: string } } | undefined);
  if (!cfgMount || cfgMount.subPath !== 'config.yaml' || cfgVol?.configMap?.name !== cm?.metadata?.name) out.push('/etc/deid-gateway/config.yaml is not the ConfigMap\'s config.yaml');
  const secret = find(objs, 'Secret')[0];
  const secretMount = mounts.find((m) => m.mountPath === '/etc/deid-gateway/secrets');
  const secretVol = secretMount && (volumes.get(secretMount.name) as { secret?: { secretName?: string } } | undefined);
  if (!secretVol?.secret?.secretName) out.push('/etc/deid-gateway/secrets is not a Secret volume');
  else if (secret && secretVol.secret.secretName !== secret.metadata?.name) out.push(`the secrets volume mounts ${secretVol.secret.secretName}, the chart's Secret is ${String(secret.metadata?.name)}`);
  if (secret) {
    for (const [k, v] of Object.entries(secret.data ?? {})) {
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) out.push(`Secret data "${k}" is not a base64 string (${JSON.stringify(v)})`);
    }
  }
  const sa = find(objs, 'ServiceAccount')[0];
  if (sa && pod.spec.serviceAccountName !== sa.metadata?.name) out.push('the pod does not use the chart\'s ServiceAccount');

  // Every path in the config is on a mount: writable ones on a writable volume; files of the
  // chart's Secret are keys of it.
  const mountFor = (p: string) =>
    mounts
      .filter((m) => p === m.mountPath || p.startsWith(`${m.mountPath}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const writable = (m: { name: string; readOnly?: boolean }): boolean => {
    if (m.readOnly) return false;
    const v = volumes.get(m.name) as Dict | undefined;
    return claims.has(m.name) || !!v?.emptyDir || !!v?.persistentVolumeClaim;
  };
  const needWritable = (what: string, dir: string): void => {
    const m = mountFor(dir);
    if (!m) out.push(`${what} ${dir} is on the read-only root file system`);
    else if (!writable(m)) out.push(`${what} ${dir} is on a read-only volume (${m.name})`);
  };
  needWritable('spool.dir', config.spool.dir);
  if (config.audit.file) needWritable('the audit file\'s folder', path.posix.dirname(config.audit.file));
  const files: [string, string | undefined][] = [
    ['pseudonyms.secretFile', config.pseudonyms.secretFile],
    ['pseudonyms.lookupCsv', config.pseudonyms.lookupCsv],
    ['api.tokenFile', config.api.tokenFile],
    ['dimse.tls.certFile', config.dimse.tls.certFile],
    ['dimse.tls.keyFile', config.dimse.tls.keyFile],
    ['dimse.tls.caFile', config.dimse.tls.caFile],
  ];
  if (!config.pseudonyms.secretFile) out.push('pseudonyms.secretFile must be set (the same secret in every replica)');
  for (const [name, d] of Object.entries(config.destinations)) {
    if (d.type === 'folder') needWritable(`destinations.${name}.path`, d.path);
    if (d.type === 'stow-rs') {
      files.push([`destinations.${name}.tls.caFile`, d.tls.caFile]);
      if (d.auth?.type === 'bearer') files.push([`destinations.${name}.auth.tokenFile`, d.auth.tokenFile]);
      if (d.auth?.type === 'basic') files.push([`destinations.${name}.auth.passwordFile`, d.auth.passwordFile]);
    }
  }
  for (const [what, f] of files) {
    if (!f) continue;
    const m = mountFor(f);
    if (!m) {
      out.push(`${what} ${f} is on no mounted volume`);
      continue;
    }
    if (m === secretMount && secret) {
      const key = path.posix.relative(m.mountPath, f);
      if (!isDict(secret.data) || !(key in secret.data)) out.push(`${what} ${f}: the chart's Secret has no key "${key}" (add it to secrets.files)`);
    }
  }

  // The pod template changes with the config and the chart's Secret.
  const sum = (s: string): string => createHash('sha256').update(s).digest('hex');
  const text = configText(objs);
  if (pod.annotations['checksum/config'] !== sum(text.replace(/\n$/, ''))) out.push('checksum/config is not the checksum of the ConfigMap\'s config.yaml');
  if (secret && !/^[0-9a-f]{64}$/.test(String(pod.annotations['checksum/secret']))) out.push('checksum/secret is missing while the chart creates the Secret');
  return out;
}
