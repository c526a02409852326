import { spawn } from 'node:child_process';

/** Polls `fn` until it returns a value (errors count as "not yet"), or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * DCMTK storescu in the background (the test can kill the gateway under it), verbose, going on
 * after a failed file; resolves with its exit status and log.
 */
export function storescuAsync(files: string[], port: number, callingAE = 'STORESCU', calledAE = 'DEIDGW'): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('storescu', ['-v', '-nh', '-aec', calledAE, '-aet', callingAE, '127.0.0.1', String(port), ...files], { env: { ...process.env, TCP_NODELAY: '1' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('exit', (status) => resolve({ status, output }));
  });
}
