import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DimseIngestSchema } from '../../src/config/schema';
import { compileAssociationPolicy, isStorageSopClass, normalizePeerAddress } from '../../src/ingest/dimse/association-policy';
import { ContextResult, RejectReason, RejectResult, RejectSource, VERIFICATION_SOP_CLASS } from '../../src/ingest/dimse/statuses';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const FIND = '1.2.840.10008.5.1.4.1.2.2.1';
const IMPLICIT = '1.2.840.10008.1.2';
const EXPLICIT = '1.2.840.10008.1.2.1';
const JPEG = '1.2.840.10008.1.2.4.50';

function policy(over: Record<string, unknown> = {}) {
  return compileAssociationPolicy(DimseIngestSchema.parse({ aeTitle: 'DEIDGW', ...over }));
}
const req = (callingAE: string, peer = '127.0.0.1', calledAE = 'DEIDGW', activeAssociations = 0) =>
  ({ callingAE, calledAE, peer, activeAssociations });

describe('association policy', () => {
  it('called AE must be ours: permanent, service user, called AE not recognized', () => {
    const d = policy({ acceptAnyCaller: true }).decide(req('ANY', '127.0.0.1', 'OTHER'));
    assert.deepEqual(d, { accept: false, result: RejectResult.Permanent, source: RejectSource.ServiceUser,
      reason: RejectReason.CalledAeNotRecognized, why: 'called AE title not recognized' });
  });

  it('calling AE must be a known caller unless acceptAnyCaller', () => {
    const p = policy({ callers: [{ aeTitle: 'SCU' }] });
    assert.equal(p.decide(req('SCU')).accept, true);
    const d = p.decide(req('INTRUDER'));
    assert.equal(d.accept, false);
    if (!d.accept) assert.equal(d.reason, RejectReason.CallingAeNotRecognized);
    assert.equal(policy({ acceptAnyCaller: true }).decide(req('INTRUDER')).accept, true);
    assert.equal(policy().decide(req('SCU')).accept, false, 'no callers and not acceptAnyCaller: nobody');
  });

  it('host lists: addresses, CIDR blocks, IPv6, IPv4-mapped peers and config entries', () => {
    const p = policy({
      callers: [
        { aeTitle: 'A', hosts: ['10.1.0.0/16', '192.168.1.7'] },
        { aeTitle: 'A', hosts: ['fd00::/64'] },
        { aeTitle: 'B', hosts: ['::ffff:172.16.0.0/108'] },
      ],
    });
    assert.equal(p.decide(req('A', '10.1.200.3')).accept, true);
    assert.equal(p.decide(req('A', normalizePeerAddress('::ffff:10.1.2.3'))).accept, true);
    assert.equal(p.decide(req('A', '192.168.1.7')).accept, true);
    assert.equal(p.decide(req('A', 'fd00::2')).accept, true, 'entries of one AE are united');
    assert.equal(p.decide(req('A', '10.2.0.1')).accept, false);
    assert.equal(p.decide(req('A', '192.168.1.8')).accept, false);
    assert.equal(p.decide(req('A', 'fd01::2')).accept, false);
    assert.equal(p.decide(req('B', '172.16.9.9')).accept, true);
    assert.equal(p.decide(req('B', '172.32.0.1')).accept, false);
    const d = p.decide(req('A', '127.0.0.1'));
    assert.equal(d.accept, false);
    if (!d.accept) {
      assert.equal(d.reason, RejectReason.CallingAeNotRecognized);
      assert.match(d.why, /not allowed from this address/);
    }
  });

  it('an empty host list means any address, even when another entry of that AE has hosts', () => {
    const p = policy({ callers: [{ aeTitle: 'A', hosts: ['10.0.0.0/8'] }, { aeTitle: 'A' }] });
    assert.equal(p.decide(req('A', '203.0.113.9')).accept, true);
  });

  it('bad host entries fail at compile time, naming the config path', () => {
    assert.throws(() => policy({ callers: [{ aeTitle: 'A', hosts: ['pacs.example.org'] }] }), /dimse\.callers\[0\]\.hosts.*host names/);
    assert.throws(() => policy({ callers: [{ aeTitle: 'A', hosts: ['10.0.0.0/33'] }] }), /prefix length above 32/);
    assert.throws(() => policy({ callers: [{ aeTitle: 'A', hosts: ['10.0.0.0/x'] }] }), /invalid prefix/);
  });

  it('association limit: transient, service provider (presentation), local limit exceeded; checked after the AE titles', () => {
    const p = policy({ acceptAnyCaller: true, maxAssociations: 2 });
    assert.equal(p.decide(req('X', '127.0.0.1', 'DEIDGW', 1)).accept, true);
    const d = p.decide(req('X', '127.0.0.1', 'DEIDGW', 2));
    assert.deepEqual(d, { accept: false, result: RejectResult.Transient, source: RejectSource.ServiceProviderPresentation,
      reason: RejectReason.LocalLimitExceeded, why: 'association limit reached (2)' });
    const wrongCalled = p.decide(req('X', '127.0.0.1', 'NOPE', 2));
    assert.ok(!wrongCalled.accept && wrongCalled.reason === RejectReason.CalledAeNotRecognized);
  });

  it('presentation contexts: storage and Verification accepted with the first proposed syntax the config allows', () => {
    const p = policy();
    assert.deepEqual(p.decideContext(CT, [JPEG, EXPLICIT]), { result: ContextResult.Accept, transferSyntax: JPEG });
    assert.deepEqual(p.decideContext(VERIFICATION_SOP_CLASS, [IMPLICIT]), { result: ContextResult.Accept, transferSyntax: IMPLICIT });
    assert.deepEqual(p.decideContext(FIND, [IMPLICIT]), { result: ContextResult.AbstractSyntaxNotSupported });
    assert.deepEqual(p.decideContext('1.3.12.2.1107.5.9.1', [IMPLICIT]), { result: ContextResult.AbstractSyntaxNotSupported },
      'private SOP classes only when configured');
    assert.deepEqual(p.decideContext(CT, ['not a uid']), { result: ContextResult.TransferSyntaxesNotSupported });

    const restricted = policy({ transferSyntaxes: [EXPLICIT], sopClasses: [CT, '1.3.12.2.1107.5.9.1'] });
    assert.deepEqual(restricted.decideContext(CT, [JPEG, IMPLICIT, EXPLICIT]), { result: ContextResult.Accept, transferSyntax: EXPLICIT });
    assert.deepEqual(restricted.decideContext(CT, [JPEG]), { result: ContextResult.TransferSyntaxesNotSupported });
    assert.deepEqual(restricted.decideContext('1.2.840.10008.5.1.4.1.1.4', [EXPLICIT]), { result: ContextResult.AbstractSyntaxNotSupported });
    assert.deepEqual(restricted.decideContext('1.3.12.2.1107.5.9.1', [EXPLICIT]), { result: ContextResult.Accept, transferSyntax: EXPLICIT });
    // Verification has no data set: its syntax is not restricted.
    assert.deepEqual(restricted.decideContext(VERIFICATION_SOP_CLASS, [IMPLICIT]), { result: ContextResult.Accept, transferSyntax: IMPLICIT });
  });

  it('storage SOP classes', () => {
    for (const uid of [CT, '1.2.840.10008.5.1.4.1.1.481.2', '1.2.840.10008.5.1.4.1.1.88.33', '1.2.840.10008.5.1.4.1.1.9.1.1',
      '1.2.840.10008.5.1.4.38.1', '1.2.840.10008.5.1.4.34.7']) assert.ok(isStorageSopClass(uid), uid);
    for (const uid of [FIND, VERIFICATION_SOP_CLASS, '1.2.840.10008.5.1.4.34.6.1', '1.2.840.10008.5.1.4.1.1', '1.2.840.10008.5.1.4.1.1.x']) {
      assert.ok(!isStorageSopClass(uid), uid);
    }
  });

  it('normalizes peer addresses', () => {
    assert.equal(normalizePeerAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizePeerAddress('::FFFF:10.0.0.1'), '10.0.0.1');
    assert.equal(normalizePeerAddress('FD00::2'), 'fd00::2');
    assert.equal(normalizePeerAddress(undefined), '');
  });
});
