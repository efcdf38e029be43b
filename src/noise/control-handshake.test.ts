// Tailscale's TS2021 framing reproduced byte for byte from protocol.md §4.7 (protocol version
// 145), from both sides, plus the refusals controlbase makes before any crypto.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Curve25519PrivateKey } from '../key/index.js';
import {
  CipherState,
  INITIATION_BYTES,
  MAX_PLAINTEXT_BYTES,
  NoiseHandshakeError,
  RecordDecoder,
  acceptClientHandshake,
  beginClientHandshake,
  checkInitiation,
  encodeErrorMessage,
  encodeRecords,
  protocolPrologue,
  type NoiseSession,
} from './index.js';

const hex = (text: string): Buffer => Buffer.from(text, 'hex');

// protocol.md §4.7.
const V = {
  controlPrivate: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  controlPublic: '8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f',
  machinePrivate: '202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
  machinePublic: '358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254',
  clientEphemeralPrivate: '404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f',
  clientEphemeralPublic: '79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a',
  serverEphemeralPrivate: '606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f',
  serverEphemeralPublic: '675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f',
  h0: 'bbea022b948cf3bc5857d70804229179e1116bc40cb8cc074835349c464bca36',
  initiation:
    '009101006079a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a5a5d3ec50c63b0e0156101cf138f46d05427ed87f592c2009bab26f178d726e3cd3848cdf4326e082406a72b79dbc7c056b1b875752f9c7a75c4c7def456f375',
  initiationBase64:
    'AJEBAGB5pjHu3hv5yY8SAyzerdDnoHk5j8eGuIzIRuyJr4WlGlpdPsUMY7DgFWEBzxOPRtBUJ+2H9ZLCAJurJvF41ybjzThIzfQybggkBqcredvHwFaxuHV1L5x6dcTH3vRW83U=',
  response: '020030675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f8eb04a0da90da516417be2a70c887259',
  handshakeHash: 'f18d9c28517f752a5ef5f1dbc6be15ca333f14b8796403b13b326eacba20119f',
  k1: '8b2f6bbba15ce6d607c316355f2d3c93f62dcbe39b04eb873b5b2e2812dc71b6',
  k2: 'e8f7da7193cd2dd7834427bc5de410cc7fa42ea2bddb06906a91b23daf60a99b',
  earlyPayload:
    'ffffff54530000005f7b226e6f64654b65794368616c6c656e6765223a226368616c7075623a63386339636163626363636463656366643064316432643364346435643664376438643964616462646364646465646665306531653265336534653565366537227d',
  serverRecord0:
    '040078db00d70d2b178d38440939df0a81793a515f856c02014a3e6c056669f78b0bb9b1f277e63ceaa6cd19cc2f986b31f18fb9a76375ffa4738fcd657b6f0ae2fb57f84bbca5da6f8f9a25a774e8923a26b8f2217ba7e2ff21c1e5ae252b3bfc91680f31e78773f3e06a7355a655c35c1540b10acb065d1cf2f6',
  serverRecord1Hello: '040015d9f138fa4f8814bf915e632b58cf04bf6ae4ab5f53',
  serverRecord1HelloLittleEndian: '04001532f8ee004a2d24355296cad15ea7c60668dc62b1b2',
  clientRecord0Preface: '0400284dc6d79a3215512fa3bceebffbbf38961aa9c7855600ce1de9d9b08b576630331d3cda4c6c08df44',
  clientRecord1Ping: '0400145cb5b7869be352e5fad2acbb3453a13e7a6c7dc6',
};
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'ascii');
const key = (text: string): Curve25519PrivateKey => Curve25519PrivateKey.fromBytes(hex(text));

function clientSession(nonceEncoding: 'big-endian' | 'little-endian' = 'big-endian'): { message: Buffer; session: NoiseSession } {
  const client = beginClientHandshake({
    machineKey: key(V.machinePrivate),
    controlPublic: hex(V.controlPublic),
    protocolVersion: 145,
    ephemeral: key(V.clientEphemeralPrivate),
    nonceEncoding,
  });
  return { message: client.message, session: client.finish(hex(V.response)) };
}

function serverSession(nonceEncoding: 'big-endian' | 'little-endian' = 'big-endian'): { response: Buffer; session: NoiseSession } {
  return acceptClientHandshake({
    controlKey: key(V.controlPrivate),
    initiation: hex(V.initiation),
    ephemeral: key(V.serverEphemeralPrivate),
    nonceEncoding,
  });
}

function openAll(cipher: CipherState, wire: Buffer): Buffer[] {
  return new RecordDecoder(cipher, () => 'test').decode(wire);
}

describe('TS2021 handshake (protocol.md §4.7 vectors)', () => {
  it('derives the four public keys from the private keys', () => {
    assert.equal(key(V.controlPrivate).publicBytes.toString('hex'), V.controlPublic);
    assert.equal(key(V.machinePrivate).publicBytes.toString('hex'), V.machinePublic);
    assert.equal(key(V.clientEphemeralPrivate).publicBytes.toString('hex'), V.clientEphemeralPublic);
    assert.equal(key(V.serverEphemeralPrivate).publicBytes.toString('hex'), V.serverEphemeralPublic);
  });

  it('uses the prologue "Tailscale Control Protocol v<decimal version>"', () => {
    assert.equal(protocolPrologue(145).toString('ascii'), 'Tailscale Control Protocol v145');
    assert.equal(protocolPrologue(51).toString('ascii'), 'Tailscale Control Protocol v51');
  });

  it('builds the 101-byte initiation and its base64 header as the client', () => {
    const { message } = clientSession();
    assert.equal(message.length, INITIATION_BYTES);
    assert.equal(message.toString('hex'), V.initiation);
    assert.equal(message.toString('base64'), V.initiationBase64);
  });

  it('answers with the 51-byte response and derives the same h as the server', () => {
    const { response, session } = serverSession();
    assert.equal(response.toString('hex'), V.response);
    assert.equal(session.handshakeHash.toString('hex'), V.handshakeHash);
    assert.equal(session.peerStatic.toString('hex'), V.machinePublic);
    assert.equal(session.protocolVersion, 145);
  });

  it('keeps what a connection holds for its life out of the shared Buffer pool', () => {
    // A 32-byte slice of Node's 8 KiB pool would keep the whole pool alive per connection.
    const { session } = serverSession();
    assert.equal(session.handshakeHash.buffer.byteLength, 32);
    assert.equal(session.peerStatic.buffer.byteLength, 32);
  });

  it('finishes the handshake as the client with the same h', () => {
    const { session } = clientSession();
    assert.equal(session.handshakeHash.toString('hex'), V.handshakeHash);
    assert.equal(session.peerStatic.toString('hex'), V.controlPublic);
  });

  it('derives k1 (client->server) and k2 (server->client): a k1/k2 cipher opens the vector records', () => {
    const c2s = new CipherState(hex(V.k1), 'big-endian');
    const s2c = new CipherState(hex(V.k2), 'big-endian');
    assert.deepEqual(openAll(c2s, hex(V.clientRecord0Preface + V.clientRecord1Ping)), [PREFACE, Buffer.from('ping')]);
    assert.deepEqual(openAll(s2c, hex(V.serverRecord0 + V.serverRecord1Hello)), [hex(V.earlyPayload), Buffer.from('hello')]);
  });

  it('seals the server records (early payload, then "hello") with big-endian counters', () => {
    const { session } = serverSession();
    assert.equal(encodeRecords(session.send, [hex(V.earlyPayload)]).toString('hex'), V.serverRecord0);
    assert.equal(encodeRecords(session.send, [Buffer.from('hello')]).toString('hex'), V.serverRecord1Hello);
    assert.deepEqual(openAll(session.receive, hex(V.clientRecord0Preface + V.clientRecord1Ping)), [PREFACE, Buffer.from('ping')]);
  });

  it('seals the client records (preface, then "ping") and opens the server records', () => {
    const { session } = clientSession();
    assert.equal(encodeRecords(session.send, [PREFACE]).toString('hex'), V.clientRecord0Preface);
    assert.equal(encodeRecords(session.send, [Buffer.from('ping')]).toString('hex'), V.clientRecord1Ping);
    assert.deepEqual(openAll(session.receive, hex(V.serverRecord0 + V.serverRecord1Hello)), [hex(V.earlyPayload), Buffer.from('hello')]);
  });

  it('gives the documented wrong record 1 with little-endian counters, and record 0 unchanged', () => {
    const { session } = serverSession('little-endian');
    assert.equal(encodeRecords(session.send, [hex(V.earlyPayload)]).toString('hex'), V.serverRecord0);
    const wrong = encodeRecords(session.send, [Buffer.from('hello')]).toString('hex');
    assert.equal(wrong, V.serverRecord1HelloLittleEndian);
    assert.notEqual(wrong, V.serverRecord1Hello);
  });

  it('makes a big-endian receiver reject the little-endian record 1', () => {
    const { session } = clientSession('big-endian');
    assert.throws(
      () => openAll(session.receive, hex(V.serverRecord0 + V.serverRecord1HelloLittleEndian)),
      (err: unknown) => err instanceof NoiseHandshakeError && err.code === 'HW_NOISE_DECRYPT_FAILED' && /decrypting record 1/.test(err.message),
    );
  });
});

describe('TS2021 initiation checks', () => {
  const controlKey = key(V.controlPrivate);
  const cases: Array<{ name: string; initiation: Buffer; code: string; hint: string | null }> = [
    { name: 'a 100-byte initiation', initiation: hex(V.initiation).subarray(0, 100), code: 'HW_NOISE_BAD_LENGTH', hint: 'wrong handshake initiation size' },
    { name: 'a 102-byte initiation', initiation: Buffer.concat([hex(V.initiation), Buffer.alloc(1)]), code: 'HW_NOISE_BAD_LENGTH', hint: 'wrong handshake initiation size' },
    { name: 'an empty initiation', initiation: Buffer.alloc(0), code: 'HW_NOISE_BAD_LENGTH', hint: 'wrong handshake initiation size' },
    { name: 'message type 2', initiation: patch(hex(V.initiation), 2, 2), code: 'HW_NOISE_BAD_MESSAGE_TYPE', hint: 'unexpected handshake message type' },
    { name: 'length field 95', initiation: patch(hex(V.initiation), 4, 95), code: 'HW_NOISE_BAD_LENGTH', hint: 'wrong handshake initiation length' },
    { name: 'a flipped bit in the encrypted machine key', initiation: patch(hex(V.initiation), 40, 0x5b), code: 'HW_NOISE_DECRYPT_FAILED', hint: null },
    { name: 'a flipped bit in the tag', initiation: patch(hex(V.initiation), 100, 0x74), code: 'HW_NOISE_DECRYPT_FAILED', hint: null },
    // The version is in the prologue: changing it in the clear breaks the tag.
    { name: 'a version changed in transit (145 -> 144)', initiation: patch(hex(V.initiation), 1, 0x90), code: 'HW_NOISE_DECRYPT_FAILED', hint: null },
    { name: 'an all-zero (low-order) ephemeral key', initiation: zeroEphemeral(hex(V.initiation)), code: 'HW_NOISE_LOW_ORDER_KEY', hint: null },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}`, () => {
      assert.throws(
        () => acceptClientHandshake({ controlKey, initiation: c.initiation }),
        (err: unknown) => err instanceof NoiseHandshakeError && err.code === c.code && err.publicHint === c.hint,
      );
    });
  }

  it('reads the version from the clear header without judging it', () => {
    assert.equal(checkInitiation(hex(V.initiation)).protocolVersion, 145);
  });

  it('frames an error message as 03, BE length, text', () => {
    assert.equal(encodeErrorMessage('no').toString('hex'), '0300026e6f');
  });

  it('refuses a response that is an error frame with the server text', () => {
    const client = beginClientHandshake({ machineKey: key(V.machinePrivate), controlPublic: hex(V.controlPublic), protocolVersion: 145 });
    assert.throws(
      () => client.finish(encodeErrorMessage('client version too old')),
      (err: unknown) => err instanceof NoiseHandshakeError && err.code === 'HW_NOISE_SERVER_REFUSED' && err.message.includes('client version too old'),
    );
  });

  it('refuses a response from the wrong server key', () => {
    const client = beginClientHandshake({ machineKey: key(V.machinePrivate), controlPublic: Curve25519PrivateKey.generate().publicBytes, protocolVersion: 145 });
    const { response } = serverSession();
    assert.throws(() => client.finish(response), (err: unknown) => err instanceof NoiseHandshakeError && err.code === 'HW_NOISE_DECRYPT_FAILED');
  });

  it('refuses a response of the wrong length', () => {
    const client = beginClientHandshake({ machineKey: key(V.machinePrivate), controlPublic: hex(V.controlPublic), protocolVersion: 145 });
    assert.throws(() => client.finish(patch(hex(V.response), 2, 47)), (err: unknown) => err instanceof NoiseHandshakeError && err.code === 'HW_NOISE_BAD_LENGTH');
  });
});

describe('TS2021 record limits', () => {
  it('cuts plaintext into records of at most 4077 bytes (4096 on the wire)', () => {
    const { session } = serverSession();
    const wire = encodeRecords(session.send, [Buffer.alloc(MAX_PLAINTEXT_BYTES * 2 + 1, 7)]);
    assert.equal(wire.length, 3 * 19 + MAX_PLAINTEXT_BYTES * 2 + 1);
    assert.equal(wire.readUInt16BE(1), 4093);
    assert.equal(wire.readUInt16BE(4096 + 1), 4093);
    assert.equal(wire.readUInt16BE(8192 + 1), 17);
  });
});

function patch(bytes: Buffer, offset: number, value: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[offset] = value;
  return copy;
}

function zeroEphemeral(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy.fill(0, 5, 37);
  return copy;
}
