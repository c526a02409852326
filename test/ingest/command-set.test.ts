/**
 * Our response command sets against dcmjs-dimse's own encoding (the one they replace): the
 * bytes must be the same for every response the SCP sends; anything the encoder does not know
 * must be left to the library.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dataset, requests, responses } from 'dcmjs-dimse';
import { encodeResponseCommand } from '../../src/ingest/dimse/command-set';
import { withOwnCommandEncoding } from '../../src/ingest/dimse/scp';

const CT = '1.2.840.10008.5.1.4.1.1.2';

function storeRequest(sop: string, messageId: number): requests.CStoreRequest {
  const req = new requests.CStoreRequest(new Dataset({ SOPClassUID: CT, SOPInstanceUID: sop }));
  req.setMessageId(messageId);
  return req;
}

function libraryBytes(response: responses.CStoreResponse | responses.CEchoResponse): Buffer {
  return Buffer.from(response.getCommandDataset().getDenaturalizedCommandDataset());
}

describe('DIMSE response command sets', () => {
  const cases: Array<{ name: string; make: () => responses.CStoreResponse | responses.CEchoResponse }> = [
    {
      name: 'C-STORE-RSP success, odd-length SOP UID',
      make: () => {
        const r = responses.CStoreResponse.fromRequest(storeRequest('1.2.3.45', 7));
        r.setStatus(0x0000);
        return r;
      },
    },
    {
      name: 'C-STORE-RSP success, even-length SOP UID, large message id',
      make: () => {
        const r = responses.CStoreResponse.fromRequest(storeRequest('1.2.3.456', 65535));
        r.setStatus(0x0000);
        return r;
      },
    },
    {
      name: 'C-STORE-RSP out of resources with an odd-length comment',
      make: () => {
        const r = responses.CStoreResponse.fromRequest(storeRequest('2.25.1', 3));
        r.setStatus(0xa700);
        r.setErrorComment('spool full, retry later');
        return r;
      },
    },
    {
      name: 'C-STORE-RSP cannot understand with an even-length comment',
      make: () => {
        const r = responses.CStoreResponse.fromRequest(storeRequest('2.25.12', 4));
        r.setStatus(0xc000);
        r.setErrorComment('cannot understand, quarantined (X)');
        return r;
      },
    },
    {
      name: 'C-ECHO-RSP',
      make: () => {
        const req = new requests.CEchoRequest();
        req.setMessageId(9);
        const r = responses.CEchoResponse.fromRequest(req);
        r.setStatus(0x0000);
        return r;
      },
    },
  ];

  for (const c of cases) {
    it(`${c.name}: same bytes as dcmjs-dimse`, () => {
      const ours = encodeResponseCommand(c.make().getCommandDataset().getElements() as Record<string, unknown>);
      assert.ok(ours, 'the encoder declined a response the SCP sends');
      assert.equal(ours.toString('hex'), libraryBytes(c.make()).toString('hex'));
    });
  }

  it('withOwnCommandEncoding answers with the same bytes through the library call', () => {
    const plain = cases[2].make();
    const fast = withOwnCommandEncoding(cases[2].make());
    assert.equal(libraryBytes(fast).toString('hex'), libraryBytes(plain).toString('hex'));
  });

  it('declines what it does not know, so the library encodes it', () => {
    assert.equal(encodeResponseCommand({ CommandField: 0x8001, NumberOfRemainingSuboperations: 3 }), undefined);
    assert.equal(encodeResponseCommand({ CommandField: 0x10000 }), undefined);
    assert.equal(encodeResponseCommand({ CommandField: '1' }), undefined);
    assert.equal(encodeResponseCommand({ ErrorComment: 'Müller' }), undefined);
    const plain = responses.CStoreResponse.fromRequest(storeRequest('1.2.3', 1));
    plain.setStatus(0);
    plain.getCommandDataset().setElement('NumberOfCompletedSuboperations', '1');
    const wrapped = responses.CStoreResponse.fromRequest(storeRequest('1.2.3', 1));
    wrapped.setStatus(0);
    wrapped.getCommandDataset().setElement('NumberOfCompletedSuboperations', '1');
    withOwnCommandEncoding(wrapped);
    assert.equal(libraryBytes(wrapped).toString('hex'), libraryBytes(plain).toString('hex'), 'the library encoded it');
  });

  it('encodes the elements as they are when the library sends, not when wrapped', () => {
    const later = (r: responses.CStoreResponse): responses.CStoreResponse => {
      r.setStatus(0xa700);
      r.setErrorComment('spool full, retry later');
      return r;
    };
    const wrapped = later(withOwnCommandEncoding(cases[0].make() as responses.CStoreResponse));
    const plain = later(cases[0].make() as responses.CStoreResponse);
    assert.equal(libraryBytes(wrapped).toString('hex'), libraryBytes(plain).toString('hex'));
  });
});
