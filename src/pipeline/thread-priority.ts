import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Lowers the calling thread's scheduling priority by `nice` steps (Linux keeps a niceness per
 * thread; `/proc/thread-self` names the thread's id). Raising niceness needs no privilege.
 * Returns the niceness now in effect, or null where this is not supported (other systems) or
 * not asked for (`nice` 0).
 *
 * The gateway's de-identification workers run this way: when the CPU is short, the thread that
 * receives instances and answers each C-STORE goes first, and the workers take what is left
 * (the sender waits for every answer, so that thread's delay is the sender's pace; the workers'
 * backlog is held in the durable spool). Measured in bench:gateway, same rounds: 88-93 ->
 * 92-107 instances/s.
 */
export function lowerThreadPriority(nice: number): number | null {
  if (nice <= 0 || process.platform !== 'linux') return null;
  try {
    const tid = Number(path.basename(fs.readlinkSync('/proc/thread-self')));
    return lowerThreadsPriority([tid], nice).length ? os.getPriority(tid) : null;
  } catch {
    return null;
  }
}

/**
 * Lowers the priority of the given threads of this process by `nice` steps each (the threads
 * Node starts at boot: see startup-threads.ts). Returns the threads changed.
 *
 * The gateway runs V8's background threads this way, like its de-identification workers: in a
 * fresh process the optimizing compiler works for the first thousand or so instances (242
 * compilations during a 500-instance run), on the cores the receiving thread needs. At a lower
 * priority it takes the cycles that are left, and the sender's pace is the receiving thread's
 * again. Measured (bench:gateway's fresh process, same host, alternating pairs): faster in 7 of
 * 10 pairs, 85.4 -> 92.5 inst/s on average; after a warm-up, 2 of 4 (even).
 */
export function lowerThreadsPriority(tids: readonly number[], nice: number): number[] {
  if (nice <= 0 || process.platform !== 'linux') return [];
  const changed: number[] = [];
  for (const tid of tids) {
    try {
      os.setPriority(tid, Math.min(19, os.getPriority(tid) + nice));
      changed.push(tid);
    } catch {
      // The thread has ended (or is not ours): nothing to lower.
    }
  }
  return changed;
}
