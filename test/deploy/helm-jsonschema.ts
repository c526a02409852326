/**
 * A small JSON Schema (draft-07) validator for the keywords values.schema.json uses. A keyword it
 * does not implement makes it throw instead of being ignored, so the schema can never rely on a
 * check this validator would skip.
 */

export type Schema = boolean | { [keyword: string]: unknown };

const ANNOTATIONS = new Set(['$schema', '$id', '$comment', 'title', 'description', 'default', 'examples', 'definitions']);
const KEYWORDS = new Set([
  'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'propertyNames', 'patternProperties',
  'items', 'minItems', 'maxItems', 'uniqueItems', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'minLength', 'maxLength', 'pattern', 'oneOf', 'anyOf', 'allOf', 'not', '$ref',
]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(t: string, v: unknown): boolean {
  const actual = typeOf(v);
  return t === actual || (t === 'number' && actual === 'integer');
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const show = (v: unknown): string => JSON.stringify(v);

/** Errors as `path: message` strings; empty when `value` is valid. */
export function validate(schema: Schema, value: unknown, root: Schema = schema, at = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${at}: not allowed`];
  if (!isObject(schema)) throw new Error(`${at}: a schema must be an object or a boolean`);
  for (const k of Object.keys(schema)) {
    if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) throw new Error(`schema keyword "${k}" (at ${at}) is not implemented by this validator`);
  }
  const errors: string[] = [];
  const s = schema;

  if (s.$ref !== undefined) {
    const ref = String(s.$ref);
    const m = /^#\/definitions\/([^/]+)$/.exec(ref);
    if (!m || !isObject(root) || !isObject(root.definitions) || !(m[1] in root.definitions)) throw new Error(`unresolvable $ref ${ref} at ${at}`);
    errors.push(...validate(root.definitions[m[1]] as Schema, value, root, at));
  }
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    if (!types.some((t) => typeMatches(t, value))) {
      errors.push(`${at}: must be ${types.join(' or ')}, is ${typeOf(value)} ${show(value)}`);
      return errors;
    }
  }
  if (s.enum !== undefined && !(s.enum as unknown[]).some((e) => equal(e, value))) errors.push(`${at}: must be one of ${show(s.enum)}, is ${show(value)}`);
  if (s.const !== undefined && !equal(s.const, value)) errors.push(`${at}: must be ${show(s.const)}`);

  if (typeof value === 'number') {
    if (typeof s.minimum === 'number' && value < s.minimum) errors.push(`${at}: must be >= ${s.minimum}, is ${value}`);
    if (typeof s.maximum === 'number' && value > s.maximum) errors.push(`${at}: must be <= ${s.maximum}, is ${value}`);
    if (typeof s.exclusiveMinimum === 'number' && value <= s.exclusiveMinimum) errors.push(`${at}: must be > ${s.exclusiveMinimum}`);
    if (typeof s.exclusiveMaximum === 'number' && value >= s.exclusiveMaximum) errors.push(`${at}: must be < ${s.exclusiveMaximum}`);
  }
  if (typeof value === 'string') {
    const len = [...value].length;
    if (typeof s.minLength === 'number' && len < s.minLength) errors.push(`${at}: must be at least ${s.minLength} characters`);
    if (typeof s.maxLength === 'number' && len > s.maxLength) errors.push(`${at}: must be at most ${s.maxLength} characters`);
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(value)) errors.push(`${at}: must match ${s.pattern}, is ${show(value)}`);
  }
  if (Array.isArray(value)) {
    if (typeof s.minItems === 'number' && value.length < s.minItems) errors.push(`${at}: must have at least ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && value.length > s.maxItems) errors.push(`${at}: must have at most ${s.maxItems} items`);
    if (s.uniqueItems === true && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) errors.push(`${at}: items must be unique`);
    if (s.items !== undefined) {
      if (Array.isArray(s.items)) throw new Error(`tuple "items" (at ${at}) is not implemented`);
      value.forEach((v, i) => errors.push(...validate(s.items as Schema, v, root, `${at}[${i}]`)));
    }
  }
  if (isObject(value)) {
    const props = (s.properties ?? {}) as Record<string, Schema>;
    const patterns = Object.entries((s.patternProperties ?? {}) as Record<string, Schema>).map(([p, sch]) => [new RegExp(p, 'u'), sch] as const);
    for (const r of (s.required ?? []) as string[]) if (!(r in value)) errors.push(`${at}: "${r}" is required`);
    for (const [k, v] of Object.entries(value)) {
      const here = `${at}.${k}`;
      if (s.propertyNames !== undefined) errors.push(...validate(s.propertyNames as Schema, k, root, `${at} key ${show(k)}`));
      let matched = false;
      if (k in props) {
        matched = true;
        errors.push(...validate(props[k], v, root, here));
      }
      for (const [re, sch] of patterns) {
        if (re.test(k)) {
          matched = true;
          errors.push(...validate(sch, v, root, here));
        }
      }
      if (!matched && s.additionalProperties !== undefined) {
        if (s.additionalProperties === false) errors.push(`${here}: unknown key (allowed: ${Object.keys(props).join(', ') || 'none'})`);
        else errors.push(...validate(s.additionalProperties as Schema, v, root, here));
      }
    }
  }
  if (s.allOf !== undefined) for (const sub of s.allOf as Schema[]) errors.push(...validate(sub, value, root, at));
  if (s.anyOf !== undefined) {
    const results = (s.anyOf as Schema[]).map((sub) => validate(sub, value, root, at));
    if (!results.some((r) => r.length === 0)) errors.push(`${at}: matches none of anyOf (${results.map((r) => r[0]).join(' | ')})`);
  }
  if (s.oneOf !== undefined) {
    const results = (s.oneOf as Schema[]).map((sub) => validate(sub, value, root, at));
    const ok = results.filter((r) => r.length === 0).length;
    if (ok !== 1) errors.push(`${at}: must match exactly one of oneOf, matches ${ok}${ok === 0 ? ` (${results.map((r) => r[0]).join(' | ')})` : ''}`);
  }
  if (s.not !== undefined && validate(s.not as Schema, value, root, at).length === 0) errors.push(`${at}: must not match ${show(s.not)}`);
  return errors;
}
