import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { parse } from 'yaml';
import { ZodError } from 'zod';
import { Config, ConfigSchema } from './schema';

export class ConfigError extends Error {}

/** The embedded default config shipped with the package. */
export const DEFAULT_CONFIG_FILE = path.join(__dirname, '..', '..', '..', 'config', 'default.yaml');

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
    const pathParts = key.slice(6).split('__').map(camel);
    let node = raw;
    for (const part of pathParts.slice(0, -1)) {
      if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    node[pathParts[pathParts.length - 1]] = parse(value);
  }
}

const camel = (s: string): string => s.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function formatZod(file: string, err: ZodError): string {
  const lines = err.issues.map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`);
  return `invalid config ${file}:\n${lines.join('\n')}`;
}
