import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const SECRET_ENV = 'DEID_SECRET';
export const DEFAULT_SECRET_FILE = '.deid-secret';

export interface SecretSource {
  secret: Buffer;
  /** Where it came from, for the user (never the secret itself). */
  origin: string;
  created: boolean;
}

/**
 * The pseudonymization secret: from the environment variable DEID_SECRET when set, else from a
 * file, created with 256 random bits and mode 0600 on first use. The same secret gives the same
 * pseudonyms on every run and every machine; losing it breaks longitudinal linkage.
 */
export function loadSecret(file: string | undefined, env: NodeJS.ProcessEnv = process.env, options: { create?: boolean } = {}): SecretSource {
  const fromEnv = env[SECRET_ENV];
  if (fromEnv !== undefined && file === undefined) {
    if (Buffer.byteLength(fromEnv) < 16) throw new Error(`${SECRET_ENV} must hold at least 16 bytes`);
    return { secret: Buffer.from(fromEnv, 'utf8'), origin: `environment variable ${SECRET_ENV}`, created: false };
  }
  const target = path.resolve(file ?? DEFAULT_SECRET_FILE);
  let created = false;
  if (options.create === false && !fs.existsSync(target)) {
    throw new Error(`secret file ${target} does not exist (a configured secret is never made up: a new one would change every pseudonym)`);
  }
  try {
    fs.writeFileSync(target, `${crypto.randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new Error(`no pseudonymization secret: set ${SECRET_ENV} or a secret file (cannot create ${target}: ${(err as Error).message})`);
    }
  }
  const text = fs.readFileSync(target, 'utf8').trim();
  if (Buffer.byteLength(text) < 16) throw new Error(`secret file ${target} must hold at least 16 bytes`);
  return { secret: Buffer.from(text, 'utf8'), origin: target, created };
}
