/**
 * Child process for the crash test (spool.test.ts): opens the spool given as argv[2] (running
 * recovery) and loops forever committing instances, claiming some, and quarantining/releasing
 * some, until it is SIGKILLed: by the parent on a timer, or, when argv[3] = N > 0, by itself
 * just before its N-th file-system step after READY (a rename, rm, open or write), so that
 * crashes also land exactly between two steps, whichever they are, and not mostly inside the
 * slow fsyncs. Each line is written with a synchronous write(2) *after* the operation resolved,
 * so a line the parent read is an acknowledgement the sender would have.
 *
 *   READY           recovery done
 *   C <id> <v>      commit() resolved 'stored' for good variant v
 *   I <id> <code>   commit() resolved 'quarantined' (the truncated variant)
 *   q <id>          about to call quarantine() on a claimed entry
 */
import * as fs from 'node:fs';
import { Spool } from '../../src/spool/spool';
import { crashVariants } from './variants';

const rawWriteSync = fs.writeSync;
const say = (line: string): void => void rawWriteSync(1, line + '\n');

/** Wraps the file-system calls the spool makes so the N-th one kills the process first. */
function killAtStep(n: number): void {
  let steps = 0;
  const step = (): void => {
    if (++steps >= n) process.kill(process.pid, 'SIGKILL');
  };
  const patch = (mod: Record<string, unknown>, names: string[]): void => {
    for (const name of names) {
      const orig = mod[name] as (...args: unknown[]) => unknown;
      mod[name] = (...args: unknown[]) => (step(), orig.apply(mod, args));
    }
  };
  // The modules themselves (TS's import-* wrappers are read-only views of them).
  patch(require('node:fs/promises'), ['rename', 'rm', 'open']);
  patch(require('node:fs'), ['renameSync', 'rmSync', 'openSync', 'writeSync', 'open', 'write']);
}

async function main(): Promise<void> {
  const spool = await Spool.open(process.argv[2], { fsync: true, highWaterPercent: 100, minFreeMB: 0 });
  say('READY');
  const killAt = Number(process.argv[3] ?? 0);
  if (killAt > 0) killAtStep(killAt);
  const { good, truncated } = crashVariants();
  for (let i = 0; ; i++) {
    const meta = { source: 'dimse' as const, callingAE: 'CRASHER', peer: `${process.pid}:${i}`, receivedAt: new Date().toISOString() };
    if (i % 5 === 4) {
      const r = await spool.acceptFile(truncated, meta);
      say(`${r.status === 'quarantined' ? 'I' : 'C?'} ${r.entry.id} ${r.status === 'quarantined' ? r.code : ''}`);
    } else {
      const v = i % good.length;
      const bytes = good[v];
      // A prefix and uneven chunks, as the DIMSE layer would feed PDVs.
      const w = spool.openWriter(meta, bytes.subarray(0, 132));
      for (let pos = 132; pos < bytes.length; pos += 7001) w.write(bytes.subarray(pos, Math.min(bytes.length, pos + 7001)));
      const r = await w.commit();
      say(`${r.status === 'stored' ? 'C' : 'I?'} ${r.entry.id} ${v}`);
    }
    if (i % 3 === 0) {
      const e = spool.claim();
      if (e && i % 2 === 0) {
        say(`q ${e.id}`);
        await spool.quarantine(e.id, 'test', 'TEST', 'crash test');
        await spool.release(e.id);
      }
    }
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
