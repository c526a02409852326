import * as v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';

/**
 * Node/V8 flags the gateway process starts with. Every launcher passes them: `npm start`, the
 * `deid-gateway` command (its shebang), the container's ENTRYPOINT and the tests' and benches'
 * gateway processes; test/cli/node-flags.test.ts keeps them in step. None can be set once the
 * process runs (V8 sizes its heap at start) and NODE_OPTIONS refuses them.
 *
 * --initial-old-space-size=128: no full garbage collection of the main thread's heap below
 * 128 MB of old generation. Without it, V8 sizes that limit from the live heap (about 26 MB)
 * plus a small step; once the first full collection has run (started by the external memory of
 * the received and forwarded instances), the gap to the limit stays smaller than the young
 * generation, and V8 starts the next incremental marking a few instances after each one ends:
 * about 45 full collections in 500 instances, a quarter of the receiving thread's time and
 * 1.2-1.4 ms per instance on each of V8's helper threads. With it: 2 full collections in 500
 * instances and in 5,000; the old generation stayed under 50 MB (README, bench:gateway).
 * It is meant for that isolate only: see confineHeapFloorToMainThread.
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/** The flags of GATEWAY_NODE_FLAGS this process was started without (by name: any value counts). */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  const name = (flag: string): string => flag.split('=')[0].replace(/_/g, '-');
  const given = new Set(execArgv.map(name));
  return GATEWAY_NODE_FLAGS.filter((f) => !given.has(name(f)));
}

/**
 * Keeps --initial-old-space-size to the main thread's isolate, whose heap V8 has configured
 * already: V8 reads the flag again for each heap it configures, so worker threads created after
 * this call get its own sizing. A worker sees little promoted garbage (a de-identification
 * worker's old generation grew 3-6 MB over 2,500 instances); with the floor, each would keep up
 * to 128 MB of it in a long run, on top of the main thread's.
 */
export function confineHeapFloorToMainThread(): void {
  if (isMainThread) v8.setFlagsFromString('--initial-old-space-size=0');
}
