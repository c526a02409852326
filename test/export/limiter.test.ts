/**
 * SourceLimiter: how many requests run at once, how many start per second, and a wait that is
 * given up (aborted) leaving no trace.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SourceLimiter } from '../../src/export/limiter';

/** Runs `n` tasks of `ms` each through the limiter; records the start times and the peak concurrency. */
async function runTasks(limiter: SourceLimiter, n: number, ms: number): Promise<{ starts: number[]; peak: number }> {
  const t0 = Date.now();
  const starts: number[] = [];
  let running = 0;
  let peak = 0;
  await Promise.all(Array.from({ length: n }, () => limiter.run(async () => {
    starts.push(Date.now() - t0);
    peak = Math.max(peak, ++running);
    await sleep(ms);
    running--;
  })));
  return { starts, peak };
}

describe('SourceLimiter', () => {
  it('never runs more than maxConcurrent at once, and frees the slot when a task fails', async () => {
    const limiter = new SourceLimiter({ maxConcurrent: 3, requestsPerSecond: 0 });
    const { peak } = await runTasks(limiter, 12, 20);
    assert.equal(peak, 3);
    await assert.rejects(limiter.run(async () => { throw new Error('boom'); }), /boom/);
    assert.equal(limiter.inUse, 0);
    assert.equal((await runTasks(limiter, 3, 5)).peak, 3, 'a failed task does not keep its slot');
  });

  it('starts at most requestsPerSecond per second after the initial burst of one second', async () => {
    const limiter = new SourceLimiter({ maxConcurrent: 64, requestsPerSecond: 10 });
    const { starts } = await runTasks(limiter, 16, 1);
    // 10 tokens at once, then one every 100 ms: the 16th starts after about 600 ms.
    assert.ok(starts.slice(0, 10).every((t) => t < 50), `burst: ${starts.slice(0, 10)}`);
    for (let i = 10; i < 16; i++) assert.ok(starts[i] >= (i - 9) * 100 - 15, `start ${i} at ${starts[i]} ms`);
    assert.ok(starts[15] < 1500, `not much slower than the rate: ${starts[15]} ms`);
  });

  it('a rate below one per second still lets requests through', async () => {
    const limiter = new SourceLimiter({ maxConcurrent: 1, requestsPerSecond: 0.8 });
    const { starts } = await runTasks(limiter, 2, 1);
    assert.ok(starts[1] >= 1200 && starts[1] < 2500, `second start at ${starts[1]} ms (one token per 1250 ms)`);
  });

  it('aborting while waiting rejects with the reason, takes no slot and does not run the task', async () => {
    const limiter = new SourceLimiter({ maxConcurrent: 1, requestsPerSecond: 0 });
    let release!: () => void;
    const first = limiter.run(() => new Promise<void>((r) => { release = r; }));
    const ac = new AbortController();
    let ran = false;
    const waiting = limiter.run(async () => { ran = true; }, ac.signal);
    const third = limiter.run(async () => 'third');
    await sleep(10);
    ac.abort(new Error('job cancelled'));
    await assert.rejects(waiting, /job cancelled/);
    release();
    await first;
    assert.equal(await third, 'third');
    assert.equal(ran, false);
    assert.equal(limiter.inUse, 0);
    await assert.rejects(limiter.run(async () => 1, ac.signal), /job cancelled/, 'an already aborted signal is refused at once');
  });

  it('aborting while waiting for a token (rate bound) rejects too', async () => {
    const limiter = new SourceLimiter({ maxConcurrent: 8, requestsPerSecond: 1 });
    await limiter.run(async () => undefined);
    const ac = new AbortController();
    const waiting = limiter.run(async () => 'late', ac.signal);
    setTimeout(() => ac.abort(new Error('stop')), 20);
    const t0 = Date.now();
    await assert.rejects(waiting, /stop/);
    assert.ok(Date.now() - t0 < 500, 'rejected at the abort, not when the token came');
  });
});
