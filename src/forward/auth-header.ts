import type { DestinationConfig } from '../config/schema';
import type { SecretSource } from './destination';

/** The `auth` block shared by the STOW-RS destination and the DICOMweb export source. */
export type HttpAuthConfig = NonNullable<Extract<DestinationConfig, { type: 'stow-rs' }>['auth']>;

/**
 * The Authorization header for `auth`: `Bearer <token>` or `Basic <base64(user:password)>`.
 * The secret is read from its file (trimmed) or environment variable on every call, so a
 * rotated token is picked up without a restart. `owner` (e.g. `destination research-pacs`)
 * names the configuration entry in the error thrown when the secret is missing.
 */
export function authHeaders(auth: HttpAuthConfig | undefined, secrets: SecretSource, owner: string): Record<string, string> {
  if (!auth) return {};
  if (auth.type === 'bearer') {
    const token = readSecret(secrets, auth.tokenFile, auth.tokenEnv, `${owner}: auth.tokenFile/tokenEnv`);
    return { Authorization: `Bearer ${token}` };
  }
  const password = readSecret(secrets, auth.passwordFile, auth.passwordEnv, `${owner}: auth.passwordFile/passwordEnv`);
  return { Authorization: `Basic ${Buffer.from(`${auth.username}:${password}`, 'utf8').toString('base64')}` };
}

function readSecret(secrets: SecretSource, file: string | undefined, env: string | undefined, field: string): string {
  let value: string | undefined;
  if (file) value = secrets.readFile(file).trim();
  else if (env) value = secrets.env[env]?.trim();
  if (!value) {
    const where = file ? `file ${file}` : env ? `environment variable ${env}` : 'nothing configured';
    throw new Error(`${field}: no secret (${where})`);
  }
  return value;
}
