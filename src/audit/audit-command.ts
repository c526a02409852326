import { Command } from 'commander';
import { UsageError } from '../cli/settings-from-options';
import { auditFilesFor, verifyAuditFiles } from './verify';

/** `deid-gateway audit verify FILE`: FILE is the current audit file; its rotated siblings are checked with it. */
export function auditCommand(): Command {
  const audit = new Command('audit').description('tools for the hash-chained audit log');
  audit
    .command('verify')
    .description('check the hash chain of FILE and its rotated siblings (FILE.1, FILE.2, ...): exit 0 when intact, 1 when broken')
    .argument('<file>', 'the current audit file, e.g. audit.jsonl')
    .action((file: string) => {
      const files = auditFilesFor(file);
      if (files.length === 0) throw new UsageError(`no audit file ${file} (nor ${file}.1, ...)`);
      const result = verifyAuditFiles(files);
      if (result.ok) {
        process.stdout.write(`ok: ${result.entries} entries\n`);
        process.exitCode = 0;
      } else {
        const b = result.firstBroken!;
        process.stdout.write(`broken at ${b.file}:${b.line}: ${b.reason}\n`);
        process.exitCode = 1;
      }
    });
  return audit;
}
