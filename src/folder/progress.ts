import { SingleBar } from 'cli-progress';

export interface Progress {
  tick(done: number, total: number | null): void;
  stop(): void;
}

/**
 * A bar with rate and ETA on a terminal; elsewhere (CI, pipes, logs) one plain line every few
 * seconds, so logs stay readable. Goes to stderr: stdout is for results.
 */
export function createProgress(label: string, stream: NodeJS.WriteStream = process.stderr, intervalMs = 5000, unit = 'files'): Progress {
  if (stream.isTTY) {
    const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} | {rate}/s | ETA {eta_formatted}`, stream, hideCursor: true, etaBuffer: 200 });
    let started = false;
    const t0 = Date.now();
    return {
      tick(done, total) {
        const rate = (done / Math.max((Date.now() - t0) / 1000, 1e-3)).toFixed(1);
        if (!started) bar.start(total ?? done, done, { rate }), (started = true);
        if (total !== null) bar.setTotal(total);
        bar.update(done, { rate });
      },
      stop: () => started && bar.stop(),
    };
  }
  const t0 = Date.now();
  let last = t0;
  return {
    tick(done, total) {
      const now = Date.now();
      if (now - last < intervalMs) return;
      last = now;
      const rate = done / ((now - t0) / 1000);
      const eta = total !== null && rate > 0 ? ` ETA ${Math.ceil((total - done) / rate)} s` : '';
      stream.write(`${label}: ${done}${total !== null ? `/${total}` : ''} ${unit}, ${rate.toFixed(1)}/s${eta}\n`);
    },
    stop: () => undefined,
  };
}
