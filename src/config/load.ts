import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { parse } from 'yaml';
import { ZodError } from 'zod';
import { Config, ConfigSchema } from './schema';

export class ConfigError extends Error {}

/** The embedded default config shipped with the package. */
import { DEFAULT_CONFIG_FILE } from './default-file';

export { DEFAULT_CONFIG_FILE };

/**
 * Loads YAML, applies environment overrides (DEID__SECTION__FIELD=value, e.g.
 * DEID__DIMSE__PORT=11113; values are parsed as YAML scalars), validates once with zod.
 * Any problem throws a ConfigError whose message names the field.
 */
export function loadConfig(file: string = DEFAULT_CONFIG_FILE, env: NodeJS.ProcessEnv = process.env): { config: Config; hash: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    throw new ConfigError(`config ${file} is not valid YAML: ${(err as Error).message}`);
  }
  applyEnv(raw as Record<string, unknown>, env);
  try {
    const config = ConfigSchema.parse(raw);
    const hash = createHash('sha256').update(JSON.stringify(config)).digest('hex');
    return { config, hash };
  } catch (err) {
    if (err instanceof ZodError) throw new ConfigError(formatZod(file, err));
    throw err;
  }
}

function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('DEID__') || value === undefined) continue;
    const segments = key.slice(6).split('__');
    let node = raw;
    let schema: unknown = ConfigSchema;
    segments.forEach((segment, i) => {
      // Field names are found in the schema, so MIN_FREE_MB reaches minFreeMB.
      const shape = objectShape(schema);
      const wanted = segment.replace(/_/g, '').toLowerCase();
      const field = (shape && Object.keys(shape).find((k) => k.toLowerCase() === wanted)) ?? camel(segment);
      schema = shape?.[field];
      if (i === segments.length - 1) node[field] = parse(value);
      else {
        if (typeof node[field] !== 'object' || node[field] === null) node[field] = {};
        node = node[field] as Record<string, unknown>;
      }
    });
  }
}

const camel = (s: string): string => s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** The fields of a zod object schema, through defaults, optionals and pipes. */
function objectShape(schema: unknown): Record<string, unknown> | undefined {
  let s = schema as { shape?: Record<string, unknown>; def?: { innerType?: unknown; in?: unknown } } | undefined;
  for (let depth = 0; s && depth < 8; depth++) {
    if (s.shape) return s.shape;
    s = (s.def?.innerType ?? s.def?.in) as typeof s;
  }
  return undefined;
}

function formatZod(file: string, err: ZodError): string {
  const lines = err.issues.map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`);
  return `invalid config ${file}:\n${lines.join('\n')}`;
}
