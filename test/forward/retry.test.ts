/**
 * Retry policy (pure timing math, give-up, what is retried) and the error classification of
 * the destinations (HTTP statuses, STOW-RS response bodies, DIMSE statuses).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RetryPolicy, RetrySchema } from '../../src/config/schema';
import { Destination, OutgoingInstance, SendResults, sendWithRetry } from '../../src/forward/destination';
import { PermanentError, TransientError, httpStatusError } from '../../src/forward/errors';
import { nextDelay, withRetry } from '../../src/forward/retry';
import { failureReasonError, parseStoreResponse } from '../../src/forward/stow-rs';
import { statusError } from '../../src/forward/c-store';

const policy = (over: Partial<RetryPolicy> = {}): RetryPolicy => RetrySchema.parse({ initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0, maxAttempts: 5, ...over });

describe('nextDelay', () => {
  it('grows exponentially from initialDelayMs and is capped at maxDelayMs (no jitter)', () => {
    const p = policy();
    assert.deepEqual([1, 2, 3, 4, 5, 6, 20].map((a) => nextDelay(p, a, 0.7)), [100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('randomises the fraction `jitter` of the capped delay: cap * (1 - j + j * random)', () => {
    const p = policy({ jitter: 0.5 });
    assert.equal(nextDelay(p, 3, 0), 200); // 400 * 0.5
    assert.equal(nextDelay(p, 3, 0.5), 300);
    assert.equal(nextDelay(p, 3, 0.999999), 400);
    assert.equal(nextDelay(p, 10, 0), 500); // cap 1000, half of it random
  });

  it('full jitter spans [0, cap) and jitter 0 ignores random', () => {
    const full = policy({ jitter: 1 });
    assert.equal(nextDelay(full, 2, 0), 0);
    assert.equal(nextDelay(full, 2, 0.25), 50);
    for (const r of [0, 0.3, 0.99]) assert.equal(nextDelay(policy(), 2, r), 200);
  });

  it('stays finite for huge attempt numbers and multiplier 1 gives a constant delay', () => {
    assert.equal(nextDelay(policy({ multiplier: 10 }), 10_000, 0.5), 1000);
    assert.deepEqual([1, 2, 9].map((a) => nextDelay(policy({ multiplier: 1 }), a, 0)), [100, 100, 100]);
  });

  it('the embedded defaults: 0.5 s doubling to 60 s with half jitter', () => {
    const d = RetrySchema.parse({});
    assert.equal(nextDelay(d, 1, 1), 500);
    assert.equal(nextDelay(d, 1, 0), 250);
    assert.equal(nextDelay(d, 8, 1), 60_000);
  });
});

describe('withRetry', () => {
  const sleeps = (): { log: number[]; sleep: (ms: number) => Promise<void> } => {
    const log: number[] = [];
    return { log, sleep: async (ms) => void log.push(ms) };
  };

  it('retries TransientError with the backoff schedule and returns the first success', async () => {
    const s = sleeps();
    const retries: Array<[number, number, string]> = [];
    const attempts: number[] = [];
    const r = await withRetry(async (attempt) => {
      attempts.push(attempt);
      if (attempt < 4) throw new TransientError('ECONNREFUSED', 'down');
      return 'ok';
    }, policy(), { onRetry: (a, d, e) => retries.push([a, d, e.code]) }, s.sleep, () => 0.5);
    assert.equal(r, 'ok');
    assert.deepEqual(attempts, [1, 2, 3, 4]);
    assert.deepEqual(s.log, [100, 200, 400]);
    assert.deepEqual(retries, [[1, 100, 'ECONNREFUSED'], [2, 200, 'ECONNREFUSED'], [3, 400, 'ECONNREFUSED']]);
  });

  it('gives up after maxAttempts and rethrows the last error itself', async () => {
    const s = sleeps();
    let n = 0;
    const errors: TransientError[] = [];
    await assert.rejects(
      withRetry(async () => {
        const e = new TransientError('HTTP_503', `try ${++n}`);
        errors.push(e);
        throw e;
      }, policy({ maxAttempts: 3 }), {}, s.sleep),
      (err) => err === errors[2],
    );
    assert.equal(n, 3);
    assert.deepEqual(s.log, [100, 200]);
  });

  it('never retries a PermanentError or an unclassified error', async () => {
    for (const err of [new PermanentError('HTTP_400', 'bad'), new Error('bug')]) {
      const s = sleeps();
      let n = 0;
      await assert.rejects(withRetry(async () => { n++; throw err; }, policy(), {}, s.sleep), (e) => e === err);
      assert.equal(n, 1);
      assert.deepEqual(s.log, []);
    }
  });

  it('maxAttempts 1 means a single try', async () => {
    let n = 0;
    await assert.rejects(withRetry(async () => { n++; throw new TransientError('X', 'x'); }, policy({ maxAttempts: 1 }), {}, async () => undefined));
    assert.equal(n, 1);
  });

  it('an aborted signal stops the waiting and rethrows', async () => {
    const ac = new AbortController();
    let n = 0;
    const t0 = Date.now();
    const p = withRetry(async () => { n++; throw new TransientError('X', 'x'); }, policy({ initialDelayMs: 60_000, maxDelayMs: 60_000 }), { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(p, TransientError);
    assert.equal(n, 1);
    assert.ok(Date.now() - t0 < 5000);
  });

  it('real sleeps follow the schedule (bounded)', async () => {
    const t0 = Date.now();
    let n = 0;
    await withRetry(async () => { if (++n < 3) throw new TransientError('X', 'x'); }, policy({ initialDelayMs: 40, jitter: 0 }));
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 115 && elapsed < 2000, `40 + 80 ms of waiting, took ${elapsed} ms`);
  });
});

describe('sendWithRetry', () => {
  const inst = (n: number): OutgoingInstance => ({
    file: `/nonexistent/${n}.dcm`, sopClassUid: '1.2', sopInstanceUid: `1.2.3.${n}`, studyUid: '1', seriesUid: '2', transferSyntaxUid: '1.2.840.10008.1.2.1', patientPseudonym: 'P',
  });

  it('resends only the transient failures and keeps final results', async () => {
    const calls: string[][] = [];
    const dest: Destination = {
      name: 'fake',
      async send(list): Promise<SendResults> {
        calls.push(list.map((i) => i.sopInstanceUid));
        if (calls.length === 1) throw new TransientError('ECONNREFUSED', 'down');
        const m: SendResults = new Map();
        for (const i of list) {
          if (i.sopInstanceUid.endsWith('.2')) m.set(i.sopInstanceUid, new PermanentError('STOW_FAILURE_A900', 'no'));
          else if (i.sopInstanceUid.endsWith('.3') && calls.length < 3) m.set(i.sopInstanceUid, new TransientError('HTTP_503', 'busy'));
          else m.set(i.sopInstanceUid, null);
        }
        return m;
      },
      probe: async () => true,
      close: async () => undefined,
    };
    const delays: number[] = [];
    const r = await sendWithRetry(dest, [inst(1), inst(2), inst(3)], policy(), { onRetry: (_a, d) => delays.push(d) }, async () => undefined, () => 0);
    assert.deepEqual(calls, [['1.2.3.1', '1.2.3.2', '1.2.3.3'], ['1.2.3.1', '1.2.3.2', '1.2.3.3'], ['1.2.3.3']]);
    assert.deepEqual(delays, [100, 200]);
    assert.equal(r.get('1.2.3.1'), null);
    assert.equal((r.get('1.2.3.2') as PermanentError).code, 'STOW_FAILURE_A900');
    assert.equal(r.get('1.2.3.3'), null);
  });

  it('after maxAttempts the last TransientError stays in the map', async () => {
    let n = 0;
    const dest: Destination = { name: 'down', send: async () => { n++; throw new TransientError('ECONNREFUSED', 'down'); }, probe: async () => false, close: async () => undefined };
    const r = await sendWithRetry(dest, [inst(1)], policy({ maxAttempts: 4 }), {}, async () => undefined);
    assert.equal(n, 4);
    assert.ok(r.get('1.2.3.1') instanceof TransientError);
  });
});

describe('error classification', () => {
  it('HTTP: 408, 429, 5xx and no answer are transient; other 4xx permanent', () => {
    for (const s of [0, 408, 429, 500, 502, 503, 504]) assert.ok(httpStatusError(s, 'x') instanceof TransientError, `${s}`);
    for (const s of [400, 401, 403, 404, 409, 413, 415]) assert.ok(httpStatusError(s, 'x') instanceof PermanentError, `${s}`);
    assert.equal(httpStatusError(503, 'x').code, 'HTTP_503');
  });

  it('DIMSE: success and warnings are stored; 0xA7xx transient; 0xA9xx, 0xCxxx and the rest permanent', () => {
    for (const s of [0x0000, 0xb000, 0xb007, 0xb006]) assert.equal(statusError(s, undefined, 'x'), null, s.toString(16));
    for (const s of [0xa700, 0xa7ff]) assert.ok(statusError(s, undefined, 'x') instanceof TransientError, s.toString(16));
    for (const s of [0xa900, 0xc000, 0xc123, 0x0122, 0x0124, 0x0110, 0x0111]) assert.ok(statusError(s, undefined, 'x') instanceof PermanentError, s.toString(16));
    const e = statusError(0xa900, 'wrong class', 'sop 1') as PermanentError;
    assert.equal(e.code, 'DIMSE_A900');
    assert.match(e.message, /0xA900.*wrong class/);
  });

  it('STOW-RS FailureReason: 0xA7xx transient, others permanent, code in hex', () => {
    assert.ok(failureReasonError(0xa700, 'x') instanceof TransientError);
    const e = failureReasonError(272, 'x');
    assert.ok(e instanceof PermanentError);
    assert.equal(e.code, 'STOW_FAILURE_0110');
    assert.match(e.message, /Processing failure/);
  });

  it('STOW-RS response bodies: failed and referenced SOP instances, whatever the shape', () => {
    const body = JSON.stringify({
      '00081198': { vr: 'SQ', Value: [{ '00081150': { vr: 'UI', Value: ['1.2'] }, '00081155': { vr: 'UI', Value: ['9.9.1'] }, '00081197': { vr: 'US', Value: [43264] } }] },
      '00081199': { vr: 'SQ', Value: [{ '00081150': { vr: 'UI', Value: ['1.2'] }, '00081155': { vr: 'UI', Value: ['9.9.2'] } }] },
    });
    const o = parseStoreResponse(body);
    assert.deepEqual([...o.failed], [['9.9.1', 0xa900]]);
    assert.deepEqual([...o.referenced], ['9.9.2']);
    for (const junk of ['', 'not json', '[]', null, undefined, [], 42, '{"00081198":{"vr":"SQ"}}']) {
      const j = parseStoreResponse(junk);
      assert.equal(j.failed.size + j.referenced.size, 0);
    }
  });
});
