import { Command } from 'commander';
import * as fs from 'node:fs';
import { loadSecret } from '../config/secret';
import { OPTION_NAMES } from '../deid/profiles/types';
import { PIXEL_RISKS } from '../deid/settings';
import { quarantineDirFor, runFolderJob } from '../folder/run-folder';
import { formatSummary } from '../folder/summary';
import type { ExtractOptions } from '../folder/extract-file';
import { DeidCliOptions, settingsFromOptions, UsageError } from './settings-from-options';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Adds the de-identification options shared by `deidentify` and `extract`. */
export function addDeidOptions(cmd: Command): Command {
  return cmd
    .option('--profile <name>', 'pixel-only (keep-list, default) or basic (PS3.15 Table E.1-1)', 'pixel-only')
    .option('--option <name>', `basic profile option, repeatable: ${OPTION_NAMES.join(', ')}`, collect, [])
    .option('--keep <tag>', 'keep this top-level attribute (keyword or gggg,eeee), repeatable', collect, [])
    .option('--remove <tag>', 'remove this attribute, repeatable', collect, [])
    .option('--empty <tag>', 'replace this attribute with an empty value, repeatable', collect, [])
    .option('--replace <tag=value>', 'replace this attribute with a fixed value, repeatable', collect, [])
    .option('--accept-risk <risk>', `accept a pixel risk instead of quarantining it, repeatable: ${PIXEL_RISKS.join(', ')}`, collect, [])
    .option('--patient-prefix <text>', 'prefix of patient pseudonyms', 'ANON-')
    .option('--date-shift <min:max>', 'range of the per-patient date shift in days (retainLongModifiedDates)', '-3650:-365')
    .option('--lookup <file.csv>', 'CSV "original PatientID,subject ID"; wins over the keyed pseudonym')
    .option('--lookup-required', 'quarantine instances whose PatientID is not in the lookup table')
    .option('--secret-file <file>', 'pseudonymization secret (created 0600 if absent; default .deid-secret, or $DEID_SECRET)');
}

type FolderCliOptions = DeidCliOptions & { jobs?: number; summaryJson?: string; progress: boolean; secretFile?: string };

function folderCommand(name: string, description: string): Command {
  return addDeidOptions(new Command(name).description(description).argument('<in>').argument('<out>'))
    .option('--jobs <n>', 'worker threads (default: all cores)', (v) => parseInt(v, 10))
    .option('--summary-json <file>', 'write the summary (counts, reasons, rates, per-file problems) as JSON')
    .option('--no-progress', 'no progress output');
}

/** Runs a folder job and reports: the summary on stdout, exit 0 when every input is accounted for. */
async function runAndReport(input: string, output: string, o: FolderCliOptions, extract?: ExtractOptions): Promise<void> {
  const settings = settingsFromOptions(o);
  const secret = loadSecret(o.secretFile);
  if (secret.created) process.stderr.write(`created a new pseudonymization secret in ${secret.origin} (mode 0600): keep it to get the same pseudonyms next time\n`);
  const summary = await runFolderJob({ input, output, settings, secret: secret.secret, jobs: o.jobs, progress: o.progress, extract });
  process.stdout.write(`${formatSummary(summary)}\n`);
  if (summary.outcomes.quarantined) process.stdout.write(`quarantined originals and reasons: ${quarantineDirFor(output)}\n`);
  if (o.summaryJson) fs.writeFileSync(o.summaryJson, `${JSON.stringify(summary, null, 2)}\n`);
  // Success means every input was written, skipped or quarantined with a reason.
  const unexplained = summary.problems.filter((p) => p.code === 'WORKER_CRASH').length;
  process.exitCode = unexplained ? 1 : 0;
}

export function deidentifyCommand(): Command {
  return folderCommand('deidentify', 'de-identify every DICOM file under IN into OUT/<patient>/<study>/<series>/<sop>.dcm')
    .action((input: string, output: string, o: FolderCliOptions) => runAndReport(input, output, o));
}

export function extractCommand(): Command {
  return folderCommand('extract', 'de-identify, then write the full-depth pixel arrays of every DICOM file under IN (.npy or 16-bit PNG) with a manifest.csv')
    .option('--format <format>', 'npy (one array per instance: frames x rows x cols [x samples]) or png16 (one lossless PNG per frame)', 'npy')
    .option('--rescale', 'write float32 values after RescaleSlope/RescaleIntercept')
    .action((input: string, output: string, o: FolderCliOptions & { format: string; rescale?: boolean }) => {
      if (o.format !== 'npy' && o.format !== 'png16') throw new UsageError(`--format: expected npy or png16, got "${o.format}"`);
      if (o.format === 'png16' && o.rescale) throw new UsageError('--rescale writes float32, which PNG cannot hold: use --format npy');
      return runAndReport(input, output, o, { format: o.format, rescale: !!o.rescale });
    });
}
