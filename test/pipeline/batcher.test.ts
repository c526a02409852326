/**
 * The batcher between the pipeline and a destination: a lone instance leaves after the linger,
 * a full batch at once, and while the allowed sends are busy the instances gather and leave
 * together as soon as one finishes; every caller gets its own instance's result.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Destination, OutgoingInstance, SendResults } from '../../src/forward/destination';
import { Batcher } from '../../src/pipeline/batcher';

const inst = (n: number): OutgoingInstance => ({
  file: `/x/${n}.dcm`, sopClassUid: '1.2', sopInstanceUid: `2.25.${n}`, studyUid: '2.25.1', seriesUid: '2.25.2', transferSyntaxUid: '1.2.840.10008.1.2.1', patientPseudonym: 'P',
});

/** A destination whose sends finish only when the test says so. */
class HeldDestination implements Destination {
  readonly name = 'held';
  readonly batches: string[][] = [];
  private readonly pending: Array<() => void> = [];
  send(instances: OutgoingInstance[]): Promise<SendResults> {
    this.batches.push(instances.map((i) => i.sopInstanceUid));
    return new Promise((resolve) => this.pending.push(() => resolve(new Map(instances.map((i) => [i.sopInstanceUid, i.sopInstanceUid.endsWith('7') ? new Error('refused') : null])))));
  }
  finishOldest(): void {
    this.pending.shift()!();
  }
  async probe(): Promise<boolean> { return true; }
  async close(): Promise<void> {}
}

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('Batcher', () => {
  it('a lone instance leaves after the linger; a full batch leaves at once', async () => {
    const d = new HeldDestination();
    const b = new Batcher(d, 3, 30, 2);
    const first = b.send(inst(1));
    await tick(5);
    assert.equal(d.batches.length, 0, 'still lingering');
    await tick(40);
    assert.deepEqual(d.batches, [['2.25.1']]);
    const rest = [b.send(inst(2)), b.send(inst(3)), b.send(inst(4))];
    assert.deepEqual(d.batches[1], ['2.25.2', '2.25.3', '2.25.4'], 'full: no linger');
    d.finishOldest();
    d.finishOldest();
    assert.equal(await first, null);
    assert.deepEqual(await Promise.all(rest), [null, null, null]);
  });

  it('while the sends allowed are busy, instances gather and leave together when one finishes', async () => {
    const d = new HeldDestination();
    const b = new Batcher(d, 10, 1, 1);
    const results = [b.send(inst(1))];
    await tick(10);
    assert.equal(d.batches.length, 1);
    for (let n = 2; n <= 8; n++) results.push(b.send(inst(n)));
    await tick(20);
    assert.equal(d.batches.length, 1, 'nothing leaves while the only send is busy');
    d.finishOldest();
    await tick();
    assert.deepEqual(d.batches[1], ['2.25.2', '2.25.3', '2.25.4', '2.25.5', '2.25.6', '2.25.7', '2.25.8']);
    d.finishOldest();
    const out = await Promise.all(results);
    assert.equal(out.filter((e) => e === null).length, 7);
    assert.match(String(out[6]), /refused/, 'each caller gets its own instance result');
  });

  it('more waiting than a batch holds leaves in several batches, never more sends than allowed', async () => {
    const d = new HeldDestination();
    const b = new Batcher(d, 2, 1, 2);
    const results = [1, 2, 3, 4, 5, 6, 7].map((n) => b.send(inst(n)));
    await tick(10);
    assert.deepEqual(d.batches, [['2.25.1', '2.25.2'], ['2.25.3', '2.25.4']]);
    d.finishOldest();
    await tick();
    assert.equal(d.batches.length, 3);
    d.finishOldest();
    d.finishOldest();
    await tick();
    d.finishOldest();
    await tick();
    assert.deepEqual(d.batches.slice(2), [['2.25.5', '2.25.6'], ['2.25.7']]);
    await Promise.all(results);
  });
});
