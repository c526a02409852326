/**
 * The Helm chart (helm/deid-gateway), checked statically because helm is not available here:
 * the chart is rendered by a renderer for the Go-template subset it uses (helm-template.ts), and
 *   1. every .Values path used in templates/ exists in values.yaml (and every value is used);
 *   2. values.yaml (and the ci/ values) validate against values.schema.json;
 *   3. every rendered kind/apiVersion is current (and every literal one in the templates);
 *   4. the ConfigMap's config.yaml loads with the gateway's own loader (zod ConfigSchema);
 *   5. the pod has the security settings, probes and resources;
 * plus the wiring between objects (selectors, ports, volumes, paths in the config, checksums).
 * Each check is also shown failing on a deliberately broken copy. Where Go and Sprig are
 * installed, the renderer's output is compared with Go's text/template + Sprig (helm-go/).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import YAML from 'yaml';
import { z } from 'zod';
import { ConfigSchema } from '../../src/config/schema';
import { OPTION_NAMES } from '../../src/deid/profiles/types';
import { PIXEL_RISKS } from '../../src/deid/settings';
import { repoRoot } from '../support/tools';
import {
  checkApiVersions, checkGatewayConfig, checkPodSecurity, checkValuesRefs, checkValuesSchema, checkWiring, collectValuesRefs,
  configText, find, readSchema, statefulSet,
} from './helm-checks';
import { Schema, validate } from './helm-jsonschema';
import { Chart, coalesce, Dict, formatFloat, K8sObject, loadChart, manifests, renderChart, TemplateSet } from './helm-template';

const ROOT = repoRoot();
const CHART_DIR = path.join(ROOT, 'helm', 'deid-gateway');
const chart = loadChart(CHART_DIR);
const schema = readSchema(chart);
const SECRET: Dict = { secrets: { pseudonymizationSecret: '4f1c2a9e8b7d6c5f4e3d2c1b0a998877' } };
const prodValues = YAML.parse(fs.readFileSync(path.join(CHART_DIR, 'ci', 'production-values.yaml'), 'utf8'), { version: '1.1' }) as Dict;

const merged = (overrides: Dict[]): Dict => overrides.reduce((acc, o) => coalesce(acc, o), chart.values);
const render = (overrides: Dict[], c: Chart = chart) => manifests(renderChart(c, overrides, { name: 'gw', namespace: 'research' }, { missingKey: 'error' }));

/** Everything a `helm install` with these values would go through, as a list of problems. */
function allProblems(overrides: Dict[], c: Chart = chart): string[] {
  const problems = checkValuesSchema(schema, merged(overrides));
  const objs = render(overrides, c);
  const readinessPath = ((merged(overrides).probes as Dict).readinessPath as '/readyz' | '/healthz');
  problems.push(...checkApiVersions(objs), ...checkPodSecurity(objs, readinessPath));
  const { config, problems: cp } = checkGatewayConfig(objs);
  problems.push(...cp);
  if (config) problems.push(...checkWiring(objs, config));
  return problems;
}

/** A copy of the chart with edits to its templates or values, in memory. */
function brokenChart(edit: { template?: [string, (src: string) => string]; values?: (v: Dict) => void }): Chart {
  const copy: Chart = { ...chart, values: structuredClone(chart.values), templates: new Map(chart.templates) };
  if (edit.template) {
    const [file, fn] = edit.template;
    const src = copy.templates.get(file);
    assert.ok(src, `no template ${file}`);
    const changed = fn(src);
    assert.notEqual(changed, src, `the edit of ${file} changed nothing`);
    copy.templates.set(file, changed);
  }
  edit.values?.(copy.values);
  return copy;
}

const SCENARIOS: [string, Dict[]][] = [
  ['the defaults (with a pseudonymization secret)', [SECRET]],
  ['ci/production-values.yaml (existing Secret, TLS, LoadBalancer, ServiceMonitor)', [prodValues]],
  ['production values with the chart\'s own Secret', [prodValues, { secrets: { existingSecret: '', pseudonymizationSecret: 'x'.repeat(40), apiTokens: ['token-one', 'token-two'], files: { 'research-pacs-token': 'stow-token' } } }]],
  ['the other switches (no persistence, no ServiceAccount, minAvailable, NodePort, TLS without client certs, long names)', [SECRET, {
    fullnameOverride: 'a-release-name-that-is-far-longer-than-fifty-two-characters-in-total',
    persistence: { enabled: false },
    serviceAccount: { create: false },
    podDisruptionBudget: { minAvailable: '50%' },
    service: { dimse: { type: 'NodePort', nodePort: 30112 } },
    dimseTls: { enabled: true, secretName: 'gw-tls', requireClientCert: false },
    image: { digest: `sha256:${'ab'.repeat(32)}` },
    podLabels: { team: 'research-it' },
    probes: { readinessPath: '/healthz' },
    command: ['node', '/app/dist/src/cli/main.js'],
    podAnnotations: { 'example.org/owner': 'radiology' },
    gateway: { dimse: { acceptAnyCaller: true }, pseudonyms: { lookupCsv: '/etc/deid-gateway/secrets/subjects.csv', lookupRequired: true } },
    secrets: { files: { 'subjects.csv': 'MRN1,SUBJ-001\n' } },
  }]],
];

describe('the chart renders into a consistent, valid release', () => {
  for (const [name, overrides] of SCENARIOS) {
    test(name, () => assert.deepEqual(allProblems(overrides), []));
  }

  test('Chart.yaml: apiVersion v2, appVersion is the gateway\'s version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(chart.meta.apiVersion, 'v2');
    assert.equal(chart.meta.name, 'deid-gateway');
    assert.equal(chart.meta.appVersion, pkg.version);
  });

  test('every template renders something in some scenario, NOTES.txt included', () => {
    const rendered = new Set<string>();
    for (const [, overrides] of SCENARIOS) for (const o of render(overrides)) rendered.add(o.file);
    const manifestsFiles = [...chart.templates.keys()].filter((f) => /\.ya?ml$/.test(f));
    assert.deepEqual(manifestsFiles.filter((f) => !rendered.has(f)), []);
    const notes = renderChart(chart, [SECRET]).files.get('templates/NOTES.txt') ?? '';
    assert.match(notes, /every association is rejected/, 'NOTES warns that no caller is allowed by default');
  });
});

describe('check 1: .Values paths in templates exist in values.yaml', () => {
  test('the chart passes, and the walk sees the paths used through with, variables and ranges', () => {
    assert.deepEqual(checkValuesRefs(chart), []);
    const paths = new Set(collectValuesRefs(chart).refs.map((r) => r.path.join('.')));
    for (const p of ['gateway', 'containerPorts.dimse', 'secrets.files', 'podLabels', 'service.dimse.type', 'persistence.retentionPolicy.whenScaled', 'metrics.serviceMonitor.labels']) {
      assert.ok(paths.has(p), `${p} is seen`);
    }
  });

  test('fails when values.yaml lacks a key a template uses', () => {
    const broken = brokenChart({ values: (v) => delete (v.persistence as Dict).retentionPolicy });
    const problems = checkValuesRefs(broken);
    assert.ok(problems.some((p) => /statefulset\.yaml:\d+: \.Values\.persistence\.retentionPolicy\.whenScaled is not in values\.yaml/.test(p)), problems.join('\n'));
  });

  test('fails on a typo in a template, also inside with/range and through $', () => {
    const cases: [string, (s: string) => string, RegExp][] = [
      ['templates/statefulset.yaml', (s) => s.replace('.Values.image.pullPolicy', '.Values.image.pullpolicy'), /\.Values\.image\.pullpolicy is not in values\.yaml/],
      ['templates/service-dimse.yaml', (s) => s.replace('{{- with .Values.service.dimse.annotations }}', '{{- with .Values.service.dimse }}{{ .annotation }}{{ end }}{{- with .Values.service.dimse.annotations }}'), /\.Values\.service\.dimse\.annotation is not in values\.yaml/],
      ['templates/_helpers.tpl', (s) => s.replace('{{- range $key, $value := .Values.secrets.files }}', '{{- range $key, $value := .Values.secrets.files }}{{ $.Values.secrets.file }}'), /\.Values\.secrets\.file is not in values\.yaml/],
      ['templates/pdb.yaml', (s) => s.replace('.Release.Namespace', '.Release.Namespaces'), /\.Release\.Namespaces does not exist/],
      ['templates/pdb.yaml', (s) => s.replace('{{- include "deid-gateway.labels" . | nindent 4 }}', '{{- include "deid-gateway.labels" .Values | nindent 4 }}'), /must pass the root context/],
      ['templates/pdb.yaml', (s) => s.replace('.Values.podDisruptionBudget.maxUnavailable', 'index .Values "podDisruptionBudget"'), /dynamic look-up/],
    ];
    for (const [file, edit, want] of cases) {
      const problems = checkValuesRefs(brokenChart({ template: [file, edit] }));
      assert.ok(problems.some((p) => want.test(p)), `${want}: ${problems.join('\n')}`);
    }
  });

  test('fails on a value no template uses', () => {
    const problems = checkValuesRefs(brokenChart({ values: (v) => ((v.service as Dict).dimse as Dict).sessionAffinity = 'ClientIP' }));
    assert.deepEqual(problems, ['values.yaml: service.dimse.sessionAffinity is used by no template']);
  });
});

describe('check 2: values validate against values.schema.json', () => {
  test('values.yaml and the ci/ values (as helm merges them) pass', () => {
    assert.deepEqual(checkValuesSchema(schema, chart.values), []);
    for (const f of fs.readdirSync(path.join(CHART_DIR, 'ci'))) {
      const v = YAML.parse(fs.readFileSync(path.join(CHART_DIR, 'ci', f), 'utf8'), { version: '1.1' }) as Dict;
      assert.deepEqual(checkValuesSchema(schema, merged([v])), [], f);
    }
  });

  const BROKEN: [Dict, RegExp][] = [
      [{ replicaCount: 'two' }, /\$\.replicaCount: must be integer, is string/],
      [{ replicas: 3 }, /\$\.replicas: unknown key/],
      [{ gateway: { api: { port: 9000 } } }, /\$\.gateway\.api: unknown key/],
      [{ gateway: { spool: { dir: '/elsewhere' } } }, /\$\.gateway\.spool\.dir: unknown key/],
      [{ gateway: { routes: [{ name: 'r', profile: 'everything', destinations: ['research-folder'] }] } }, /\$\.gateway\.routes\[0\]\.profile: must be one of/],
      [{ gateway: { routes: [] } }, /\$\.gateway\.routes: must have at least 1 items/],
      [{ gateway: { destinations: { pacs: { type: 'stow-rs', url: 'research-pacs:8042' } } } }, /\$\.gateway\.destinations\.pacs: must match exactly one of oneOf/],
      [{ gateway: { dimse: { aeTitle: 'THIS AE TITLE IS FAR TOO LONG' } } }, /\$\.gateway\.dimse\.aeTitle: must match/],
      [{ service: { dimse: { type: 'Ingress' } } }, /\$\.service\.dimse\.type: must be one of/],
      [{ secrets: { files: { 'api-tokens': 'x' } } }, /\$\.secrets\.files key "api-tokens": must not match/],
      [{ persistence: { size: 'fifty gigabytes' } }, /\$\.persistence\.size: must match/],
      [{ image: { pullPolicy: 'Sometimes' } }, /\$\.image\.pullPolicy: must be one of/],
      [{ gateway: { routes: [{ name: 'r', destinations: ['research-folder'], match: { tags: [{ tag: 'Modality', equals: 'CT', regex: 'C.*' }] } }] } }, /\$\.gateway\.routes\[0\]\.match\.tags\[0\]: must match exactly one of oneOf/],
      [{ podDisruptionBudget: { maxUnavailable: 'one' } }, /\$\.podDisruptionBudget\.maxUnavailable: matches none of anyOf/],
    ];

  test('fails on broken values', () => {
    for (const [override, want] of BROKEN) {
      const problems = checkValuesSchema(schema, merged([override]));
      assert.ok(problems.some((p) => want.test(p)), `${JSON.stringify(override)} -> ${problems.join(' / ') || 'no problem'}`);
    }
  });

  test('zod\'s z.fromJSONSchema, a second validator, agrees (on the schema without "not", which it lacks)', () => {
    const copy = structuredClone(schema) as Dict;
    const files = ((((copy.properties as Dict).secrets as Dict).properties as Dict).files as Dict).propertyNames as Dict;
    assert.ok(files.not, 'the only "not" of the schema');
    delete files.not;
    assert.ok(!JSON.stringify(copy).includes('"not"'));
    const zodSchema = z.fromJSONSchema(copy as Parameters<typeof z.fromJSONSchema>[0]);
    for (const [, overrides] of SCENARIOS) assert.ok(zodSchema.safeParse(merged(overrides)).success);
    for (const [override] of BROKEN) {
      if (JSON.stringify(override).includes('api-tokens')) continue; // the "not" rule
      assert.equal(zodSchema.safeParse(merged([override])).success, false, JSON.stringify(override));
    }
  });

  test('the validator refuses a schema keyword it does not implement', () => {
    assert.throws(() => validate({ type: 'object', dependencies: {} } as Schema, {}), /keyword "dependencies".*not implemented/);
    assert.deepEqual(validate({ anyOf: [{ type: 'integer' }, { type: 'string', pattern: '%$' }] }, '50%'), []);
    assert.equal(validate({ $ref: '#/definitions/p' }, 0, { definitions: { p: { type: 'integer', minimum: 1 } } }).length, 1);
  });
});

describe('check 3: rendered kinds and apiVersions are current', () => {
  test('every object of every scenario, and every literal apiVersion in the templates', () => {
    assert.deepEqual(checkApiVersions(render([prodValues]), chart), []);
    const kinds = render([prodValues, { secrets: { existingSecret: '', pseudonymizationSecret: 'y'.repeat(32) } }]).map((o) => `${String(o.obj.apiVersion)} ${String(o.obj.kind)}`).sort();
    assert.deepEqual(kinds, [
      'apps/v1 StatefulSet', 'monitoring.coreos.com/v1 ServiceMonitor', 'policy/v1 PodDisruptionBudget',
      'v1 ConfigMap', 'v1 Secret', 'v1 Service', 'v1 Service', 'v1 Service', 'v1 ServiceAccount',
    ]);
  });

  test('fails on removed or wrong apiVersions', () => {
    const cases: [string, string, string, RegExp][] = [
      ['templates/pdb.yaml', 'apiVersion: policy/v1\n', 'apiVersion: policy/v1beta1\n', /PodDisruptionBudget policy\/v1beta1 is removed\/deprecated; use policy\/v1/],
      ['templates/statefulset.yaml', 'apiVersion: apps/v1\n', 'apiVersion: apps/v1beta2\n', /StatefulSet apps\/v1beta2 is removed\/deprecated; use apps\/v1/],
      ['templates/service-http.yaml', 'apiVersion: v1\nkind: Service', 'apiVersion: extensions/v1beta1\nkind: Ingress', /Ingress extensions\/v1beta1 is removed\/deprecated; use networking\.k8s\.io\/v1/],
      ['templates/servicemonitor.yaml', 'apiVersion: monitoring.coreos.com/v1\n', 'apiVersion: monitoring.coreos.com/v1alpha1\n', /ServiceMonitor monitoring\.coreos\.com\/v1alpha1 is removed/],
      ['templates/configmap.yaml', 'apiVersion: v1\n', 'apiVersion: {{ "v1" }}\n', /apiVersion is computed/],
    ];
    for (const [file, from, to, want] of cases) {
      const broken = brokenChart({ template: [file, (s) => s.replace(from, to)] });
      const staticProblems = checkApiVersions([], broken);
      assert.ok(staticProblems.some((p) => want.test(p)), `static ${file}: ${staticProblems.join('\n')}`);
      if (!/computed/.test(String(want))) {
        const renderedProblems = checkApiVersions(render([prodValues], broken));
        assert.ok(renderedProblems.some((p) => want.test(p)), `rendered ${file}: ${renderedProblems.join('\n')}`);
      }
    }
  });
});

describe('check 4: the ConfigMap holds a valid gateway config', () => {
  test('from the defaults: it parses with ConfigSchema and is the gateway values plus what the chart owns', () => {
    // values.yaml alone (the Secret would need a pseudonymization secret, the ConfigMap does not).
    const objs = manifests(renderChart(chart, [], { name: 'gw', namespace: 'research' }, { missingKey: 'error', only: ['templates/configmap.yaml'] }));
    assert.deepEqual(objs.map((o) => o.obj.kind), ['ConfigMap']);
    const raw = YAML.parse(configText(objs)) as Dict;
    const parsed = ConfigSchema.safeParse(raw);
    assert.ok(parsed.success, parsed.success ? '' : parsed.error.message);
    const { config, problems } = checkGatewayConfig(objs);
    assert.deepEqual(problems, []);
    assert.ok(config);
    assert.deepEqual(raw.routes, (chart.values.gateway as Dict).routes);
    assert.deepEqual(raw.destinations, (chart.values.gateway as Dict).destinations);
    assert.equal(config.dimse.host, '0.0.0.0');
    assert.equal(config.dimse.acceptAnyCaller, false, 'no caller is accepted until the deployment names them');
    assert.equal(config.spool.dir, '/var/lib/deid-gateway/spool');
    assert.equal(config.audit.file, '/var/log/deid-gateway/audit.jsonl');
    assert.equal(config.pseudonyms.secretFile, '/etc/deid-gateway/secrets/pseudonymization-secret');
    assert.equal(config.api.tokenFile, '/etc/deid-gateway/secrets/api-tokens');
    assert.equal(config.dimse.tls.enabled, false);
  });

  test('from the production values: routes, destinations, callers and TLS arrive', () => {
    const { config, problems } = checkGatewayConfig(render([prodValues]));
    assert.deepEqual(problems, []);
    assert.ok(config);
    assert.deepEqual(Object.keys(config.destinations).sort(), ['archive', 'research-pacs'], 'a null in the values removes the default folder destination');
    assert.deepEqual(config.routes.map((r) => r.name), ['no-secondary-capture', 'research-ct-mr']);
    assert.deepEqual(config.dimse.callers.map((c) => c.aeTitle), ['PACS_ROUTER', 'MODALITY_CT1']);
    assert.deepEqual(config.dimse.tls, { enabled: true, certFile: '/etc/deid-gateway/tls/tls.crt', keyFile: '/etc/deid-gateway/tls/tls.key', caFile: '/etc/deid-gateway/tls/ca.crt', requireClientCert: true });
    const stow = config.destinations['research-pacs'];
    assert.ok(stow.type === 'stow-rs' && stow.auth?.type === 'bearer' && stow.auth.tokenFile === '/etc/deid-gateway/secrets/research-pacs-token');
  });

  test('fails when the gateway would refuse the config', () => {
    const cases: [Dict, RegExp][] = [
      [{ gateway: { routes: [{ name: 'r', destinations: ['nowhere'] }] } }, /routes\.0\.destinations: unknown destination "nowhere"/],
      [{ gateway: { routes: [{ name: 'r' }] } }, /routes\.0: a route needs destinations or drop: true/],
      [{ gateway: { pseudonyms: { dateShiftDays: { min: 10, max: -10 } } } }, /pseudonyms\.dateShiftDays: min must not exceed max/],
      [{ gateway: { routes: [{ name: 'r', destinations: ['research-folder'], overrides: [{ tag: 'ImageComments', action: 'replace' }] }] } }, /replace needs a value/],
    ];
    for (const [override, want] of cases) {
      const { problems } = checkGatewayConfig(render([SECRET, override]));
      assert.ok(problems.some((p) => want.test(p)), `${JSON.stringify(override)} -> ${problems.join(' / ') || 'no problem'}`);
    }
  });
});

describe('check 5: pod security settings and probes', () => {
  test('the defaults: non-root, read-only root FS, no escalation, no capabilities, seccomp, probes', () => {
    const objs = render([SECRET]);
    assert.deepEqual(checkPodSecurity(objs), []);
    const c = ((statefulSet(objs).spec?.template as Dict).spec as { containers: Dict[] }).containers[0];
    assert.deepEqual(c.livenessProbe && (c.livenessProbe as Dict).httpGet, { path: '/healthz', port: 'http' });
    assert.deepEqual(c.readinessProbe && (c.readinessProbe as Dict).httpGet, { path: '/readyz', port: 'http' });
  });

  test('fails when a setting is weakened or a probe is missing', () => {
    const cases: [Dict, RegExp][] = [
      [{ containerSecurityContext: { readOnlyRootFilesystem: false } }, /readOnlyRootFilesystem must be true/],
      [{ containerSecurityContext: { allowPrivilegeEscalation: true } }, /allowPrivilegeEscalation must be false/],
      [{ containerSecurityContext: { capabilities: { drop: [] } } }, /capabilities\.drop must include ALL/],
      [{ containerSecurityContext: { capabilities: { add: ['NET_ADMIN'] } } }, /must add no capabilities/],
      [{ containerSecurityContext: { privileged: true } }, /must not be privileged/],
      [{ podSecurityContext: { runAsNonRoot: false } }, /runAsNonRoot must be true/],
      [{ podSecurityContext: { runAsUser: 0 } }, /runAsUser must be a non-zero UID/],
      [{ podSecurityContext: { seccompProfile: { type: 'Unconfined' } } }, /seccompProfile\.type must be RuntimeDefault/],
      [{ resources: { limits: null } }, /resources\.limits\.memory must be set/],
    ];
    for (const [override, want] of cases) {
      const problems = checkPodSecurity(render([SECRET, override]));
      assert.ok(problems.some((p) => want.test(p)), `${JSON.stringify(override)} -> ${problems.join(' / ') || 'no problem'}`);
    }
    const noReadiness = brokenChart({ template: ['templates/statefulset.yaml', (s) => s.replace(/ {10}readinessProbe:\n(.*\n){4}/, '')] });
    assert.ok(checkPodSecurity(render([SECRET], noReadiness)).includes('container gateway: no readinessProbe'));
    const wrongPath = brokenChart({ template: ['templates/statefulset.yaml', (s) => s.replace('path: {{ .Values.probes.readinessPath }}', 'path: /healthz')] });
    assert.ok(checkPodSecurity(render([SECRET], wrongPath)).includes('container gateway: readinessProbe must GET /readyz, gets /healthz'));
    const wrongPort = brokenChart({ template: ['templates/statefulset.yaml', (s) => s.replace(/(path: \/healthz\n\s+port: )http/, '$1dimse')] });
    assert.ok(checkPodSecurity(render([SECRET], wrongPort)).includes('container gateway: startupProbe must use the http port, uses dimse'));
  });
});

describe('wiring between the objects and the config', () => {
  test('fails on paths the pod cannot write or files the Secret lacks', () => {
    const cases: [Dict[], RegExp][] = [
      [[SECRET, { gateway: { destinations: { 'research-folder': { type: 'folder', path: '/data/out' } } } }], /destinations\.research-folder\.path \/data\/out is on the read-only root file system/],
      [[SECRET, { gateway: { destinations: { 'research-folder': { type: 'folder', path: '/etc/deid-gateway/secrets/out' } } } }], /is on a read-only volume \(secrets\)/],
      [[prodValues, { secrets: { existingSecret: '', pseudonymizationSecret: 'z'.repeat(32) } }], /auth\.tokenFile \/etc\/deid-gateway\/secrets\/research-pacs-token: the chart's Secret has no key "research-pacs-token"/],
      [[prodValues, { extraVolumeMounts: [] }], /tls\.caFile \/etc\/deid-gateway\/ca\/research-ca\.crt is on no mounted volume/],
    ];
    for (const [overrides, want] of cases) {
      const objs = render(overrides);
      const { config } = checkGatewayConfig(objs);
      assert.ok(config);
      const problems = checkWiring(objs, config);
      assert.ok(problems.some((p) => want.test(p)), `${want} -> ${problems.join(' / ') || 'no problem'}`);
    }
    const unquoted = brokenChart({ template: ['templates/_helpers.tpl', (s) => s.replace('| b64enc | quote }}', '| b64enc }}')] });
    const objsUnquoted = render([SECRET], unquoted);
    assert.ok(checkWiring(objsUnquoted, checkGatewayConfig(objsUnquoted).config!).includes('Secret data "api-tokens" is not a base64 string (null)'), 'an empty token list must not render as null');
    const badSelector = brokenChart({ template: ['templates/service-http.yaml', (s) => s.replace('selector:\n    {{- include "deid-gateway.selectorLabels" . | nindent 4 }}', 'selector:\n    app: other')] });
    const objs = render([SECRET], badSelector);
    assert.ok(checkWiring(objs, checkGatewayConfig(objs).config!).some((p) => /Service gw-deid-gateway: selector does not select the pods/.test(p)));
  });

  test('a config or Secret change changes the pod template (rolls the replicas); unrelated values do not', () => {
    const ann = (o: Dict[]): Dict => ((statefulSet(render(o)).spec?.template as Dict).metadata as { annotations: Dict }).annotations;
    const base = ann([SECRET]);
    assert.notEqual(ann([SECRET, { gateway: { spool: { workers: 3 } } }])['checksum/config'], base['checksum/config']);
    assert.notEqual(ann([SECRET, { secrets: { apiTokens: ['new-token'] } }])['checksum/secret'], base['checksum/secret']);
    assert.equal(ann([SECRET, { replicaCount: 5 }])['checksum/config'], base['checksum/config']);
    assert.equal(ann([prodValues])['checksum/secret'], undefined, 'an existing Secret is not the chart\'s to checksum');
  });
});

describe('rendering rules', () => {
  const renderError = (overrides: Dict[]): string => {
    try {
      render(overrides);
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };

  test('the chart refuses to render without a usable pseudonymization secret', () => {
    assert.match(renderError([]), /secrets\.pseudonymizationSecret is required unless secrets\.existingSecret is set/);
    assert.match(renderError([{ secrets: { pseudonymizationSecret: 'short' } }]), /must hold at least 16 bytes/);
    assert.match(renderError([SECRET, { secrets: { files: { 'api-tokens': 'x' } } }]), /"api-tokens" is a reserved key/);
    assert.match(renderError([SECRET, { dimseTls: { enabled: true } }]), /dimseTls\.secretName is required/);
    assert.equal(renderError([{ secrets: { existingSecret: 'mine' } }]), '');
  });

  test('the Secret holds the secret, the tokens one per line, and the extra files', () => {
    const objs = render([SECRET, { secrets: { apiTokens: ['t1', 't2'], files: { 'research-pacs-token': 'abc' } } }]);
    const data = find(objs, 'Secret')[0].data as Record<string, string>;
    const dec = (k: string): string => Buffer.from(data[k], 'base64').toString('utf8');
    assert.equal(dec('pseudonymization-secret'), (SECRET.secrets as Dict).pseudonymizationSecret);
    assert.equal(dec('api-tokens'), 't1\nt2');
    assert.equal(dec('research-pacs-token'), 'abc');
  });

  test('the DIMSE Service: ClusterIP by default, LoadBalancer with source ranges and Local traffic policy', () => {
    const svc = (o: Dict[]): K8sObject => find(render(o), 'Service', (s) => String(s.metadata?.name).endsWith('-dimse'))[0];
    const cluster = svc([SECRET]);
    assert.equal(cluster.spec?.type, 'ClusterIP');
    assert.ok(!('externalTrafficPolicy' in (cluster.spec ?? {})) && !('loadBalancerSourceRanges' in (cluster.spec ?? {})));
    const lb = svc([prodValues]);
    assert.equal(lb.spec?.type, 'LoadBalancer');
    assert.deepEqual(lb.spec?.loadBalancerSourceRanges, ['10.20.0.0/16']);
    assert.equal(lb.spec?.externalTrafficPolicy, 'Local');
    assert.deepEqual(lb.spec?.ports, [{ name: 'dimse', port: 11112, targetPort: 'dimse', protocol: 'TCP' }]);
  });

  test('one claim per replica, kept when scaled down, mounted as spool, research and audit', () => {
    const sts = statefulSet(render([SECRET]));
    const vct = (sts.spec?.volumeClaimTemplates as K8sObject[])[0];
    assert.equal(vct.metadata?.name, 'data');
    assert.deepEqual((vct.spec as Dict).resources, { requests: { storage: '50Gi' } });
    assert.deepEqual(sts.spec?.persistentVolumeClaimRetentionPolicy, { whenScaled: 'Retain', whenDeleted: 'Retain' });
    const mounts = (((sts.spec?.template as Dict).spec as { containers: { volumeMounts: Dict[] }[] }).containers[0].volumeMounts).filter((m) => m.name === 'data');
    assert.deepEqual(mounts.map((m) => [m.mountPath, m.subPath]), [['/var/lib/deid-gateway/spool', 'spool'], ['/var/lib/deid-gateway/research', 'research'], ['/var/log/deid-gateway', 'audit']]);
  });

  test('names fit: the full name is at most 52 characters (the pod revision label must fit in 63)', () => {
    const objs = render(SCENARIOS[3][1]);
    for (const o of objs) assert.ok(String(o.obj.metadata?.name).length <= 63, String(o.obj.metadata?.name));
    assert.ok(String(statefulSet(objs).metadata?.name).length <= 52);
  });
});

describe('values.schema.json follows the gateway\'s config schema (src/config/schema.ts)', () => {
  /** Settings the chart owns (set in the config template) or leaves at their default on purpose. */
  const OWNED = new Set(['dimse.host', 'dimse.port', 'dimse.tls', 'spool.dir', 'exports.dir', 'spool.fsync', 'audit.file', 'api', 'pseudonyms.secretFile', 'pseudonyms.secretEnv']);
  /** zod internals (`_zod.def`), walked generically. */
  type Z = any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const defOf = (z: Z): Z => z._zod.def;
  const unwrap = (z: Z): Z => {
    let s = z;
    while (['default', 'optional', 'nullable', 'prefault'].includes(defOf(s).type)) s = defOf(s).innerType;
    return s;
  };
  const deref = (s: Schema): Dict => {
    let x = s as Dict;
    while (typeof x.$ref === 'string') x = ((schema as Dict).definitions as Dict)[x.$ref.split('/').pop()!] as Dict;
    return x;
  };

  function compare(zod: Z, js: Schema, at: string, out: string[]): void {
    const z = unwrap(zod);
    const s = deref(js);
    const t = defOf(z).type as string;
    switch (t) {
      case 'object': {
        const shape = z.shape as Record<string, Z>;
        const props = (s.properties ?? {}) as Record<string, Schema>;
        if (s.additionalProperties !== false) out.push(`${at}: the schema must refuse unknown keys (the gateway does)`);
        for (const k of Object.keys(props)) {
          if (!(k in shape)) out.push(`${at}.${k}: allowed by values.schema.json, unknown to the gateway`);
          else compare(shape[k], props[k], `${at}.${k}`, out);
        }
        for (const k of Object.keys(shape)) {
          const p = `${at}.${k}`.replace(/^gateway\./, '');
          if (!(k in props) && !OWNED.has(p)) out.push(`${at}.${k}: a gateway setting values.schema.json does not allow`);
        }
        break;
      }
      case 'array':
        if (s.type !== 'array') out.push(`${at}: must be an array`);
        else compare(defOf(z).element, s.items as Schema, `${at}[]`, out);
        break;
      case 'record':
        compare(defOf(z).valueType, s.additionalProperties as Schema, `${at}.*`, out);
        break;
      case 'enum': {
        const want = Object.values(defOf(z).entries as Record<string, string>).sort();
        if (JSON.stringify(((s.enum ?? []) as string[]).slice().sort()) !== JSON.stringify(want)) out.push(`${at}: enum ${JSON.stringify(s.enum)} != the gateway's ${JSON.stringify(want)}`);
        break;
      }
      case 'union': {
        const options = defOf(z).options as Z[];
        const branches = ((s.oneOf ?? []) as Schema[]).map(deref);
        if (branches.length !== options.length) out.push(`${at}: ${branches.length} oneOf branches for ${options.length} gateway alternatives`);
        for (const o of options) {
          const keys = Object.keys(unwrap(o).shape).sort().join(',');
          const b = branches.find((x) => Object.keys((x.properties ?? {}) as Dict).sort().join(',') === keys);
          if (!b) out.push(`${at}: no oneOf branch with keys ${keys}`);
          else compare(o, b, `${at}(${keys})`, out);
        }
        break;
      }
      case 'literal':
        if (JSON.stringify(s.const) !== JSON.stringify((defOf(z).values as unknown[])[0])) out.push(`${at}: const ${JSON.stringify(s.const)} != ${JSON.stringify(defOf(z).values)}`);
        break;
      case 'string':
        if (s.type !== 'string') out.push(`${at}: must be a string`);
        break;
      case 'number':
        if (s.type !== 'number' && s.type !== 'integer') out.push(`${at}: must be a number`);
        break;
      case 'boolean':
        if (s.type !== 'boolean') out.push(`${at}: must be a boolean`);
        break;
      case 'pipe':
        compare(defOf(z).in, js, at, out);
        break;
      default:
        out.push(`${at}: zod type ${t} not compared`);
    }
  }

  test('every settable key exists in the gateway, every gateway key is settable or owned by the chart, enums agree', () => {
    const out: string[] = [];
    compare(ConfigSchema, ((schema as Dict).properties as Dict).gateway as Schema, 'gateway', out);
    assert.deepEqual(out, []);
    const route = deref((((schema as Dict).definitions as Dict).route as Dict)) as Dict;
    const props = route.properties as Record<string, Dict>;
    assert.deepEqual(((props.options.items as Dict).enum as string[]).slice().sort(), [...OPTION_NAMES].sort());
    assert.deepEqual(((props.acceptRisks.items as Dict).enum as string[]).slice().sort(), [...PIXEL_RISKS].sort());
  });
});

describe('the template renderer follows Go/Helm semantics', () => {
  const run = (src: string, data: unknown = {}, opts = {}): string => {
    const set = new TemplateSet(opts);
    set.add('t', src);
    return set.render('t', data);
  };

  test('trim markers, else if, with, range over maps in key order, variables', () => {
    assert.equal(run('a  {{- " b " -}}  c'), 'a b c');
    assert.equal(run('{{ if eq .x "1" }}one{{ else if eq .x "2" }}two{{ else }}other{{ end }}', { x: '2' }), 'two');
    assert.equal(run('{{ with .a }}{{ .b }}{{ else }}none{{ end }}', { a: { b: 'B' } }), 'B');
    assert.equal(run('{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}', { m: { b: 2, a: 1 } }), 'a=1;b=2;');
    assert.equal(run('{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}'), '2');
    assert.equal(run('{{/* a comment */}}x{{- /* trimmed */ -}}  y'), 'xy');
    assert.equal(run('{{ (dict "a" (dict "b" "c")).a.b }}'), 'c');
  });

  test('values are float64: comparing them with int literals fails as in helm; large numbers print as 1e+06', () => {
    assert.throws(() => run('{{ if eq .n 1 }}{{ end }}', { n: 1 }), /incompatible types for comparison/);
    assert.equal(run('{{ if eq (int .n) 1 }}yes{{ end }}', { n: 1 }), 'yes');
    assert.equal(formatFloat(1000000), '1e+06');
    assert.equal(formatFloat(1500000), '1.5e+06');
    assert.equal(formatFloat(262144), '262144');
    assert.equal(formatFloat(0.5), '0.5');
    assert.equal(run('{{ .n }}', { n: 11112 }), '11112');
    assert.throws(() => run('{{ "x" | indent .n }}', { n: 2 }), /indent: wrong type for value; expected int; got float64/);
  });

  test('and/or short-circuit; a field of nil fails; a missing key is nil unless strict', () => {
    assert.equal(run('{{ if and .a .a.b }}y{{ else }}n{{ end }}', {}), 'n');
    assert.throws(() => run('{{ .a.b }}', {}), /nil pointer evaluating interface \{\}\.b/);
    assert.equal(run('[{{ .missing }}]', {}), '[]');
    assert.throws(() => run('{{ .missing }}', {}, { missingKey: 'error' }), /map has no entry for key "missing"/);
    assert.throws(() => run('{{ nosuchfunction 1 }}'), /function "nosuchfunction" not defined/);
  });

  test('toYaml sorts keys and drops the final newline; nindent/indent; quote', () => {
    assert.equal(run('{{ toYaml .v | nindent 2 }}', { v: { b: [1, 'on'], a: 'x' } }), '\n  a: x\n  b:\n  - 1\n  - "on"');
    assert.equal(run('{{ "a\\nb" | indent 3 }}'), '   a\n   b');
    assert.equal(run('{{ quote "x\\"y" }}'), '"x\\"y"');
  });
});

describe('the renderer gives the same text as Go text/template with Sprig (when Go is installed)', () => {
  /** Builds test/deploy/helm-go (Helm's engine functions over Go's text/template and Sprig); null without Go and Sprig. */
  function buildGoRenderer(): string | null {
    const gopaths = [process.env.GOPATH, '/usr/share/gocode'].filter((p): p is string => !!p);
    const gopath = gopaths.find((p) => fs.existsSync(path.join(p, 'src', 'github.com', 'Masterminds', 'sprig')));
    if (!gopath || spawnSync('go', ['version']).status !== 0) return null;
    const bin = path.join(os.tmpdir(), `deid-helm-go-${process.pid}`);
    const r = spawnSync('go', ['build', '-o', bin, 'main.go'], {
      cwd: path.join(ROOT, 'test', 'deploy', 'helm-go'),
      env: { ...process.env, GO111MODULE: 'off', GOPATH: gopath, GOCACHE: path.join(os.tmpdir(), 'deid-helm-gocache') },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`go build failed: ${r.stderr}`);
    return bin;
  }
  const bin = buildGoRenderer();
  after(() => {
    if (bin) fs.rmSync(bin, { force: true });
  });
  const skip = bin ? false : 'Go and Sprig are not installed (apt-get install golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev)';

  function goRender(overrides: Dict[]): { files?: Record<string, string>; error?: string } {
    const name = String(chart.meta.name);
    const templates = Object.fromEntries([...chart.templates].map(([rel, src]) => [`${name}/${rel}`, src]));
    const render = [...chart.templates.keys()].filter((rel) => !path.posix.basename(rel).startsWith('_')).map((rel) => `${name}/${rel}`);
    const data = {
      Values: merged(overrides),
      Release: { Name: 'gw', Namespace: 'research', Service: 'Helm', IsInstall: true, IsUpgrade: false, Revision: 1 },
      Chart: Object.fromEntries(Object.entries(chart.meta).map(([k, v]) => [k.charAt(0).toUpperCase() + k.slice(1), v])),
      Capabilities: { KubeVersion: { Version: 'v1.30.0', Major: '1', Minor: '30' } },
    };
    const r = spawnSync(bin!, [], { input: JSON.stringify({ templates, render, data, strict: true }), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`helm-go failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as { files?: Record<string, string>; error?: string };
  }

  test('every template of every scenario renders to the same text', { skip }, () => {
    for (const [scenario, overrides] of SCENARIOS) {
      const go = goRender(overrides);
      assert.equal(go.error, undefined, `${scenario}: Go failed: ${go.error}`);
      const ours = renderChart(chart, overrides, { name: 'gw', namespace: 'research' }, { missingKey: 'error' }).files;
      for (const [rel, text] of ours) assert.equal(text, go.files![`deid-gateway/${rel}`], `${scenario}: ${rel}`);
    }
  });

  test('the same values fail in both, with the same message', { skip }, () => {
    for (const overrides of [[], [{ secrets: { pseudonymizationSecret: 'short' } }], [SECRET, { dimseTls: { enabled: true } }]] as Dict[][]) {
      const go = goRender(overrides);
      assert.ok(go.error, `Go rendered ${JSON.stringify(overrides)}`);
      const message = /error calling (?:required|fail): (.*)$/.exec(go.error!)?.[1];
      assert.ok(message, go.error);
      assert.throws(() => renderChart(chart, overrides), (err: Error) => err.message.endsWith(message!));
    }
  });
});
