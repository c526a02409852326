#!/usr/bin/env -S node --initial-old-space-size=128
// The flags above are GATEWAY_NODE_FLAGS (./node-flags.ts): a test keeps them in step.
// First: lists the threads Node started at boot, before libuv's thread pool exists (see there).
import '../pipeline/startup-threads';
import { Command, CommanderError } from 'commander';
import { auditCommand } from '../audit/audit-command';
import { deidentifyCommand, extractCommand } from './deidentify-command';
import { exportCommand } from './export-command';
import { confineHeapFloorToMainThread } from './node-flags';
import { quarantineCommand } from './quarantine-command';
import { serveCommand } from './serve-command';
import { UsageError } from './settings-from-options';

const program = new Command('deid-gateway')
  .description('DICOM de-identification gateway and folder engine (PS3.15 Annex E)')
  .version('0.1.0')
  .addCommand(serveCommand())
  .addCommand(deidentifyCommand())
  .addCommand(extractCommand())
  .addCommand(exportCommand())
  .addCommand(auditCommand())
  .addCommand(quarantineCommand());

// `deid-gateway ... | head` closes stdout early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

// Before any command starts a worker thread.
confineHeapFloorToMainThread();

program.exitOverride();
program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`deid-gateway: ${(err as Error).message}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
