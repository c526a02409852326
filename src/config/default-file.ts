import * as path from 'node:path';

/** The embedded default config (a module of its own so that finding it loads neither zod nor yaml). */
export const DEFAULT_CONFIG_FILE = path.join(__dirname, '..', '..', '..', 'config', 'default.yaml');
