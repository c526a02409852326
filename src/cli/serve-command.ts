import { Command } from 'commander';
import { loadCliConfig } from './cli-config';
import { missingNodeFlags } from './node-flags';

/** `deid-gateway serve`: runs the gateway until SIGTERM/SIGINT, then stops gracefully. */
export function serveCommand(): Command {
  return new Command('serve')
    .description('run the gateway: DIMSE C-STORE in, spool, de-identify, forward, audit, REST API')
    .option('--config <file>', 'YAML config (default: the embedded config/default.yaml); DEID__SECTION__FIELD env vars override')
    .action(async (o: { config?: string }) => {
      const missing = missingNodeFlags();
      if (missing.length) {
        process.stderr.write(`deid-gateway: warning: node was started without ${missing.join(' ')}; under load the receiving thread then spends about a quarter of its time in full garbage collections (start it as \`npm start\`, the \`deid-gateway\` command or the container image do)\n`);
      }
      const loaded = await loadCliConfig(o.config);
      // Loaded here so the folder commands never pay for the gateway's network stack.
      const { startGateway } = await import('../gateway/gateway');
      const gw = await startGateway(loaded.config, loaded.hash);
      // Handlers first, then the "listening" line: a supervisor may signal as soon as it reads it.
      const shutdown = (signal: string): void => {
        process.stderr.write(`deid-gateway: ${signal}, stopping\n`);
        gw.stop(signal).then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.stderr.write(`deid-gateway listening: DIMSE ${loaded.config.dimse.aeTitle}@${loaded.config.dimse.host}:${gw.dimsePort}${gw.apiPort ? `, API http://${loaded.config.api.host}:${gw.apiPort}` : ''}\n`);
    });
}
