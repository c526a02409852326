// docs/configuration.md is generated from the zod schema (scripts/generate-config-reference.ts):
// these tests prove it is fresh and complete, and that the example configs in config/examples/
// are valid and that a broken copy of each is refused with a message naming the field.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { collectFields, defOf, FieldDoc, REFERENCE_FILE, renderConfigReference, unwrap, yamlFlow } from '../../scripts/generate-config-reference';
import { ConfigError, loadConfig } from '../../src/config/load';
import { ConfigSchema } from '../../src/config/schema';
import { repoRoot, withTempDir } from '../support/tools';

const EXAMPLES = ['pacs-routing.yaml', 'dicomweb-research-export.yaml', 'compliance.yaml'];
const examplePath = (name: string): string => path.join(repoRoot(), 'config', 'examples', name);
type Json = Record<string, unknown>;

/** The text of the doc section under the heading of `id` (up to the next heading). */
function section(doc: string, id: string): string | undefined {
  const m = new RegExp(`^#{2,3} \`${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\`\\n([\\s\\S]*?)(?=^#{1,3} |$(?![\\s\\S]))`, 'm').exec(doc);
  return m?.[1];
}

/**
 * Leaf ids from zod's own JSON Schema export, walked independently of the generator's zod
 * walk, in the reference's path notation: a field the generator skipped would show up here.
 */
function jsonSchemaLeaves(node: Json, id: string, out: string[]): void {
  const join = (k: string): string => (id ? `${id}.${k}` : k);
  const options = (node.anyOf ?? node.oneOf) as Json[] | undefined;
  const objectish = (n: Json): boolean => n.type === 'object' || (((n.anyOf ?? n.oneOf) as Json[] | undefined)?.every((o) => o.type === 'object') ?? false);
  if (node.type === 'object' && node.properties) {
    for (const [k, v] of Object.entries(node.properties as Record<string, Json>)) jsonSchemaLeaves(v, join(k), out);
  } else if (node.type === 'object' && typeof node.additionalProperties === 'object') {
    jsonSchemaLeaves(node.additionalProperties as Json, `${id}.<name>`, out);
  } else if (node.type === 'array' && objectish(node.items as Json)) {
    jsonSchemaLeaves(node.items as Json, `${id}[]`, out);
  } else if (options && options.every((o) => o.type === 'object')) {
    const props = options.map((o) => o.properties as Record<string, Json>);
    const disc = Object.keys(props[0]).find((k) => props.every((p) => p[k]?.const !== undefined));
    if (disc) {
      out.push(`${id}.${disc}`);
      props.forEach((p) => {
        for (const [k, v] of Object.entries(p)) if (k !== disc) jsonSchemaLeaves(v, `${id}[${disc}=${String(p[disc].const)}].${k}`, out);
      });
    } else {
      const merged = new Map<string, Json>();
      for (const p of props) for (const [k, v] of Object.entries(p)) merged.set(k, v);
      for (const [k, v] of merged) jsonSchemaLeaves(v, join(k), out);
    }
  } else {
    out.push(id);
  }
}

test('docs/configuration.md equals a fresh generation from the schema', () => {
  const committed = fs.readFileSync(path.join(repoRoot(), REFERENCE_FILE), 'utf8');
  assert.ok(committed === renderConfigReference(), `${REFERENCE_FILE} is stale: run npm run generate:config-reference`);
});

test('every field of the schema is in the reference with its type, default and example', () => {
  const doc = fs.readFileSync(path.join(repoRoot(), REFERENCE_FILE), 'utf8');
  const fields = collectFields();
  const leaves = fields.filter((f) => f.kind === 'leaf');
  const fromJsonSchema: string[] = [];
  jsonSchemaLeaves(z.toJSONSchema(ConfigSchema, { io: 'input' }) as Json, '', fromJsonSchema);
  assert.deepEqual(leaves.map((f) => f.id).sort(), fromJsonSchema.sort(), 'the generator and zod\'s JSON Schema see the same leaf fields');
  assert.ok(leaves.length >= 75, `${leaves.length} leaves`);
  for (const f of fields) {
    if (f.id === '') continue;
    const body = section(doc, f.id);
    assert.ok(body !== undefined, `no section for ${f.id}`);
    assert.ok(body.trim().length > 0 && !body.trimStart().startsWith('- '), `${f.id}: no description`);
    assert.match(body, /^- \*\*Type:\*\* \S/m, `${f.id}: no type line`);
    if (!f.id.endsWith(']')) assert.match(body, /^- \*\*Default:\*\* \S/m, `${f.id}: no default line`);
    if (f.kind !== 'leaf') continue;
    assert.match(body, /^- \*\*Example:\*\* `[^`]+`/m, `${f.id}: no example line`);
    const r = f.schema.safeParse(f.example);
    assert.ok(r.success, `${f.id}: the example ${yamlFlow(f.example)} does not validate`);
  }
  // Facts from the schema itself, spot-checked against the text.
  assert.match(section(doc, 'dimse.port')!, /Type:\*\* integer, 0 to 65535\n- \*\*Default:\*\* `11112`/);
  assert.match(section(doc, 'routing')!, /one of `first-match`, `fan-out`/);
  assert.match(section(doc, 'destinations.<name>[type=c-store].timeoutMs')!, /Default:\*\* `30000`/);
  assert.match(section(doc, 'destinations.<name>[type=stow-rs].timeoutMs')!, /Default:\*\* `60000`/);
  assert.match(section(doc, 'routes')!, /Default:\*\* none: required/);
  assert.match(section(doc, 'dimse.tls')!, /Rule:\*\* tls.enabled needs certFile and keyFile/);
});

test('each documented environment variable sets its field', async () => {
  await withTempDir((dir) => {
    const base = path.join(dir, 'base.yaml');
    // The fields a variable cannot bring alone: TLS files (so that DEID__DIMSE__TLS__ENABLED=true
    // validates) and both ends of the date-shift range (keys without a default of their own).
    fs.writeFileSync(base, stringify({
      routes: [{ name: 'r', destinations: ['d'] }],
      destinations: { d: { type: 'folder', path: 'out' } },
      dimse: { tls: { certFile: 'c.pem', keyFile: 'k.pem' } },
      pseudonyms: { dateShiftDays: { min: -3650, max: -365 } },
    }));
    const withEnv = collectFields().filter((f): f is FieldDoc & { env: string; plainPath: string[] } => f.env !== undefined && f.plainPath !== undefined);
    assert.ok(withEnv.length >= 40, `${withEnv.length} fields with an environment variable`);
    for (const f of withEnv) {
      const { config } = loadConfig(base, { [f.env]: yamlFlow(f.example) });
      const got = f.plainPath.reduce<unknown>((node, k) => (node as Json)[k], config);
      assert.deepEqual(got, f.example, `${f.env} sets ${f.id}`);
    }
  });
});

/**
 * What zod makes of a problem at `p`: the path its message names (the field, or the plain
 * z.union around it) and the schema found at `p` (undefined inside a plain union).
 */
function resolve(data: unknown, p: (string | number)[]): { named: (string | number)[]; core?: z.ZodType } {
  let s: z.ZodType = ConfigSchema;
  let d = data;
  const out: (string | number)[] = [];
  const coreOf = (x: z.ZodType): z.ZodType | undefined => {
    const core = unwrap(x).core;
    const def = defOf(core);
    if (def.type !== 'union') return core;
    if (!def.discriminator) return undefined; // z.union reports "Invalid input" at the union
    const disc = def.discriminator;
    const opt = def.options!.find((o) => defOf(unwrap(defOf(unwrap(o).core).shape![disc]).core).values?.[0] === (d as Json)?.[disc]);
    return opt && unwrap(opt).core;
  };
  for (const key of p) {
    const core = coreOf(s);
    if (!core) {
      const def = defOf(unwrap(s).core);
      return { named: def.discriminator === key ? [...out, key] : out };
    }
    const def = defOf(core);
    if (def.type === 'object') s = def.shape![key as string];
    else if (def.type === 'array') s = def.element!;
    else if (def.type === 'record') s = def.valueType!;
    else return { named: out };
    if (!s) return { named: out }; // an unknown key: named at its object
    out.push(key);
    d = (d as Json | undefined)?.[key as string];
  }
  return { named: out, core: coreOf(s) };
}

/** Every object (for unknown keys) and every leaf value (for bad values) of a parsed config. */
function walk(v: unknown, p: (string | number)[], objects: (string | number)[][], leaves: (string | number)[][]): void {
  if (Array.isArray(v) && v.some((x) => typeof x === 'object' && x !== null)) v.forEach((x, i) => walk(x, [...p, i], objects, leaves));
  else if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    objects.push(p);
    for (const [k, x] of Object.entries(v)) walk(x, [...p, k], objects, leaves);
  } else leaves.push(p);
}

function setAt(root: Json, p: (string | number)[], value: unknown): void {
  const parent = p.slice(0, -1).reduce<Json>((n, k) => n[k] as Json, root);
  parent[p[p.length - 1]] = value;
}

const badValue = (v: unknown): unknown => (typeof v === 'string' ? 12345 : typeof v === 'number' ? 'not-a-number' : typeof v === 'boolean' ? 'not-a-boolean' : 'not-a-list');

for (const name of EXAMPLES) {
  test(`config/examples/${name} validates; a copy with an unknown key or a bad value is refused naming the field`, async () => {
    const file = examplePath(name);
    const { config } = loadConfig(file, {});
    assert.ok(config.routes.length >= 1);
    const raw = parse(fs.readFileSync(file, 'utf8')) as Json;
    const objects: (string | number)[][] = [];
    const leaves: (string | number)[][] = [];
    walk(raw, [], objects, leaves);
    assert.ok(leaves.length >= 15, `${name}: ${leaves.length} values`);
    await withTempDir((dir) => {
      const refused = (mutated: Json, expectedPath: (string | number)[], also?: RegExp): void => {
        const copy = path.join(dir, name);
        fs.writeFileSync(copy, stringify(mutated));
        const where = expectedPath.length ? expectedPath.join('.') : '(top level)';
        assert.throws(() => loadConfig(copy, {}), (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.ok(err.message.includes(`\n  ${where}: `), `expected the message to name ${where}:\n${err.message}`);
          if (also) assert.match(err.message, also);
          return true;
        });
      };
      let unknownKeys = 0;
      for (const p of objects) {
        const here = resolve(raw, p);
        if (here.core && defOf(here.core).type === 'record') continue; // a map takes any name
        const mutated = structuredClone(raw);
        p.reduce<Json>((n, k) => n[k] as Json, mutated).unknownOption = 1;
        // Inside a plain z.union zod names only the union ("Invalid input"); elsewhere the object and the key.
        if (here.core) refused(mutated, p, /Unrecognized key: "unknownOption"/);
        else refused(mutated, here.named);
        unknownKeys++;
      }
      assert.ok(unknownKeys >= 6, `${name}: ${unknownKeys} objects`);
      for (const p of leaves) {
        const mutated = structuredClone(raw);
        const old = p.reduce<unknown>((n, k) => (n as Json)[k], mutated);
        setAt(mutated, p, badValue(old));
        refused(mutated, resolve(raw, p).named);
      }
    });
  });
}
