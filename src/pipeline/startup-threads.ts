import * as fs from 'node:fs';

/**
 * The process's threads other than the main one, listed when this module is loaded: main.ts
 * imports it before anything else, so they are the threads Node starts while booting, V8's
 * platform workers (optimizing compiler, garbage-collector helpers) and its delayed-task
 * scheduler. libuv's thread pool (file system, crypto) is not among them: it starts on the
 * first asynchronous call, later. Empty where /proc is missing (not Linux) or when this module
 * was loaded late (in a test process, say), so that nothing else is ever taken for them. A
 * `--require` preload doing asynchronous I/O before main.ts would have started the pool: its
 * threads would then be listed and lowered too (slower spool commits, nothing lost).
 */
export const startupThreads: readonly number[] = listOtherThreads();

function listOtherThreads(): number[] {
  if (process.platform !== 'linux' || require.main?.filename !== mainScript()) return [];
  try {
    return fs.readdirSync('/proc/self/task').map(Number).filter((tid) => tid !== process.pid);
  } catch {
    return [];
  }
}

/** The CLI's entry script (dist/src/cli/main.js), whatever the working directory. */
function mainScript(): string {
  return require.resolve('../cli/main');
}
