import { DEFAULT_CONFIG_FILE } from '../config/default-file';
import type { Config } from '../config/schema';
import { UsageError } from './settings-from-options';

/**
 * Loads and validates a gateway config for a command. The config module (zod, yaml: about
 * 0.2 s) is required here, when a command needs it, so `deidentify` never pays for it.
 * A bad config is a UsageError (exit code 2) whose message names the field.
 */
export async function loadCliConfig(file: string | undefined): Promise<{ config: Config; hash: string }> {
  const { ConfigError, loadConfig } = await import('../config/load');
  try {
    return loadConfig(file ?? DEFAULT_CONFIG_FILE);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}
