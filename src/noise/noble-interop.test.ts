// Cross-check against an independent TS2021 implementation on @noble (testing.ts): each side of
// ours talks to the other side of the oracle, handshake and hundreds of records both ways.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Curve25519PrivateKey } from '../key/index.js';
import { RecordDecoder, acceptClientHandshake, beginClientHandshake, encodeRecords, type NoiseSession } from './index.js';
import { oracleClientInitiation, oracleRandomKey, oracleServerAccept, type OracleSession } from './testing.js';

const hex = (text: string): Buffer => Buffer.from(text, 'hex');
const RECORDS = 300; // past counter 255, so every counter byte order mistake shows

function exchange(ours: NoiseSession, oracle: OracleSession): void {
  const decoder = new RecordDecoder(ours.receive, () => 'oracle');
  for (let i = 0; i < RECORDS; i++) {
    const size = (i * 37) % 4078; // 0..4077, including empty records
    const fromUs = randomBytes(size);
    const wire = encodeRecords(ours.send, [fromUs]);
    const opened = oracle.receive.openAll(wire);
    assert.equal(opened.length, 1);
    assert.ok(Buffer.from(opened[0] ?? []).equals(fromUs), `record ${i} us -> oracle`);

    const fromOracle = randomBytes(size);
    const plaintexts = decoder.decode(Buffer.from(oracle.send.seal(fromOracle)));
    // Empty records are skipped by our decoder.
    assert.deepEqual(plaintexts, size === 0 ? [] : [fromOracle], `record ${i} oracle -> us`);
  }
}

describe('TS2021 interop with an independent @noble implementation', () => {
  it('the oracle itself reproduces protocol.md §4.7', () => {
    const client = oracleClientInitiation({
      machinePrivate: hex('202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f'),
      controlPublic: hex('8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f'),
      ephemeralPrivate: hex('404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f'),
      protocolVersion: 145,
    });
    const server = oracleServerAccept({
      controlPrivate: hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'),
      ephemeralPrivate: hex('606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f'),
      initiation: client.message,
    });
    const session = client.finish(server.response);
    assert.equal(Buffer.from(server.response).toString('hex'), '020030675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f8eb04a0da90da516417be2a70c887259');
    assert.equal(Buffer.from(session.handshakeHash).toString('hex'), 'f18d9c28517f752a5ef5f1dbc6be15ca333f14b8796403b13b326eacba20119f');
    assert.equal(Buffer.from(session.k1).toString('hex'), '8b2f6bbba15ce6d607c316355f2d3c93f62dcbe39b04eb873b5b2e2812dc71b6');
    assert.equal(Buffer.from(session.k2).toString('hex'), 'e8f7da7193cd2dd7834427bc5de410cc7fa42ea2bddb06906a91b23daf60a99b');
  });

  for (const protocolVersion of [51, 109, 145, 65535]) {
    it(`our initiator completes a handshake with the oracle responder and exchanges ${RECORDS} records each way (version ${protocolVersion})`, () => {
      const machineKey = Curve25519PrivateKey.generate();
      const controlPrivate = oracleRandomKey();
      const controlPublic = Curve25519PrivateKey.fromBytes(controlPrivate).publicBytes;
      const client = beginClientHandshake({ machineKey, controlPublic, protocolVersion });
      const server = oracleServerAccept({ controlPrivate, ephemeralPrivate: oracleRandomKey(), initiation: client.message });
      assert.equal(server.protocolVersion, protocolVersion);
      assert.ok(Buffer.from(server.machinePublic).equals(machineKey.publicBytes));
      const session = client.finish(server.response);
      assert.ok(session.handshakeHash.equals(server.session.handshakeHash));
      exchange(session, server.session);
    });

    it(`our responder completes a handshake with the oracle initiator and exchanges ${RECORDS} records each way (version ${protocolVersion})`, () => {
      const controlKey = Curve25519PrivateKey.generate();
      const machinePrivate = oracleRandomKey();
      const client = oracleClientInitiation({
        machinePrivate,
        controlPublic: controlKey.publicBytes,
        ephemeralPrivate: oracleRandomKey(),
        protocolVersion,
      });
      const server = acceptClientHandshake({ controlKey, initiation: client.message });
      assert.equal(server.session.protocolVersion, protocolVersion);
      assert.ok(server.session.peerStatic.equals(Curve25519PrivateKey.fromBytes(machinePrivate).publicBytes));
      const oracleSession = client.finish(server.response);
      assert.ok(server.session.handshakeHash.equals(oracleSession.handshakeHash));
      exchange(server.session, oracleSession);
    });
  }

  it('the oracle refuses our records when a ciphertext byte is flipped', () => {
    const controlKey = Curve25519PrivateKey.generate();
    const client = oracleClientInitiation({ machinePrivate: oracleRandomKey(), controlPublic: controlKey.publicBytes, ephemeralPrivate: oracleRandomKey(), protocolVersion: 145 });
    const server = acceptClientHandshake({ controlKey, initiation: client.message });
    const oracleSession = client.finish(server.response);
    const wire = encodeRecords(server.session.send, [Buffer.from('hello')]);
    wire[5] = (wire[5] ?? 0) ^ 1;
    assert.throws(() => oracleSession.receive.openAll(wire));
  });
});
