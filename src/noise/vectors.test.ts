// The standard Noise known-answer vectors for our primitives (snow + cacophony, see
// ../shared/vectors/noise/README.md), run from each side separately: our initiator against the
// vector's responder bytes, and our responder against the vector's initiator bytes. Transport
// messages use standard little-endian nonces and empty associated data.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedVectorsDir } from '../util/testing.js';
import { Curve25519PrivateKey } from '../key/index.js';
import { HandshakeState, protocolNameOf, type HandshakePatternName } from './index.js';

interface VectorMessage {
  payload: string;
  ciphertext: string;
}

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_static?: string;
  init_ephemeral: string;
  init_remote_static?: string;
  resp_prologue: string;
  resp_static?: string;
  resp_ephemeral: string;
  handshake_hash?: string;
  messages: VectorMessage[];
  _source_file: string;
}

function findVectorFile(): string {
  return join(sharedVectorsDir(), 'noise', '25519_chachapoly_blake2s.json');
}

const vectors = (JSON.parse(readFileSync(findVectorFile(), 'utf8')) as { vectors: Vector[] }).vectors;
const PATTERN_MESSAGES: Record<HandshakePatternName, number> = { NN: 2, XX: 3, IK: 2 };

function hex(text: string): Buffer {
  return Buffer.from(text, 'hex');
}

function patternOf(vector: Vector): HandshakePatternName {
  const match = /^Noise_(NN|XX|IK)_25519_ChaChaPoly_BLAKE2s$/.exec(vector.protocol_name);
  if (match?.[1] === undefined) throw new Error(`unexpected protocol ${vector.protocol_name}`);
  return match[1] as HandshakePatternName;
}

function keyOf(text: string | undefined): Curve25519PrivateKey | undefined {
  return text === undefined ? undefined : Curve25519PrivateKey.fromBytes(hex(text));
}

/** Plays one side of a vector; every message we send must equal the vector's bytes. */
function playSide(vector: Vector, initiator: boolean): void {
  const pattern = patternOf(vector);
  const staticKey = keyOf(initiator ? vector.init_static : vector.resp_static);
  const ephemeral = keyOf(initiator ? vector.init_ephemeral : vector.resp_ephemeral);
  const remoteStatic = initiator ? vector.init_remote_static : undefined;
  const state = new HandshakeState({
    pattern,
    initiator,
    prologue: hex(initiator ? vector.init_prologue : vector.resp_prologue),
    ...(staticKey ? { localStatic: staticKey } : {}),
    ...(ephemeral ? { localEphemeral: ephemeral } : {}),
    ...(remoteStatic ? { remoteStatic: hex(remoteStatic) } : {}),
    transportNonceEncoding: 'little-endian',
  });
  const handshakeMessages = PATTERN_MESSAGES[pattern];
  let transport: ReturnType<HandshakeState['result']> | undefined;
  vector.messages.forEach((message, index) => {
    const weSend = (index % 2 === 0) === initiator;
    const payload = hex(message.payload);
    const ciphertext = hex(message.ciphertext);
    if (index < handshakeMessages) {
      if (weSend) assert.equal(state.writeMessage(payload).toString('hex'), message.ciphertext, `handshake message ${index}`);
      else assert.equal(state.readMessage(ciphertext).toString('hex'), message.payload, `handshake message ${index}`);
      if (index === handshakeMessages - 1) {
        assert.ok(state.isComplete);
        if (vector.handshake_hash !== undefined) assert.equal(state.handshakeHash.toString('hex'), vector.handshake_hash, 'handshake hash');
        transport = state.result();
      }
      return;
    }
    assert.ok(transport);
    if (weSend) assert.equal(transport.send.seal(Buffer.alloc(0), payload).toString('hex'), message.ciphertext, `transport message ${index}`);
    else assert.equal(transport.receive.open(Buffer.alloc(0), ciphertext, 'vector').toString('hex'), message.payload, `transport message ${index}`);
  });
  assert.ok(transport, 'handshake completed');
}

describe('Noise known-answer vectors', () => {
  it('covers every IK vector in the file, and NN and XX too', () => {
    const names = vectors.map((v) => v.protocol_name);
    assert.equal(names.filter((n) => n === protocolNameOf('IK')).length, 2);
    assert.ok(names.includes(protocolNameOf('NN')));
    assert.ok(names.includes(protocolNameOf('XX')));
    assert.equal(vectors.length, 6);
  });

  for (const vector of vectors) {
    const name = `${vector.protocol_name} (${vector._source_file})`;
    it(`reproduces ${name} as initiator`, () => playSide(vector, true));
    it(`reproduces ${name} as responder`, () => playSide(vector, false));
  }
});

describe('CipherState nonce encoding', () => {
  it('fails the standard vectors at the second transport message when counters are big-endian', () => {
    const vector = vectors.find((v) => v.protocol_name === protocolNameOf('IK') && v._source_file.endsWith('cacophony.txt'));
    assert.ok(vector);
    const state = new HandshakeState({
      pattern: 'IK',
      initiator: true,
      prologue: hex(vector.init_prologue),
      localStatic: Curve25519PrivateKey.fromBytes(hex(vector.init_static ?? '')),
      localEphemeral: Curve25519PrivateKey.fromBytes(hex(vector.init_ephemeral)),
      remoteStatic: hex(vector.init_remote_static ?? ''),
      transportNonceEncoding: 'big-endian',
    });
    const [m0, m1, m2, , m4] = vector.messages;
    assert.ok(m0 && m1 && m2 && m4);
    state.writeMessage(hex(m0.payload));
    state.readMessage(hex(m1.ciphertext));
    const { send } = state.result();
    // Counter 0 encodes the same in both byte orders; counter 1 does not.
    assert.equal(send.seal(Buffer.alloc(0), hex(m2.payload)).toString('hex'), m2.ciphertext);
    assert.notEqual(send.seal(Buffer.alloc(0), hex(m4.payload)).toString('hex'), m4.ciphertext);
  });
});
