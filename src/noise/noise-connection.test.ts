// NoiseConnection over real TCP sockets and over an in-memory pipe we can tamper with: big data
// both ways, byte-by-byte trickle, and every way a record stream can go bad.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket, type AddressInfo } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Curve25519PrivateKey } from '../key/index.js';
import { HeadwayError } from '../util/headway-error.js';
import {
  CipherState,
  MAX_PLAINTEXT_BYTES,
  NoiseConnection,
  RecordDecoder,
  acceptClientHandshake,
  beginClientHandshake,
  encodeRecords,
  type NoiseSession,
} from './index.js';

function sessions(): { client: NoiseSession; server: NoiseSession; machineKey: Curve25519PrivateKey } {
  const controlKey = Curve25519PrivateKey.generate();
  const machineKey = Curve25519PrivateKey.generate();
  const initiation = beginClientHandshake({ machineKey, controlPublic: controlKey.publicBytes, protocolVersion: 145 });
  const accepted = acceptClientHandshake({ controlKey, initiation: initiation.message });
  return { client: initiation.finish(accepted.response), server: accepted.session, machineKey };
}

/** Two Duplexes wired back to back; what one writes the other reads. */
function pipePair(): [Duplex, Duplex] {
  const aToB = new PassThrough();
  const bToA = new PassThrough();
  const make = (readFrom: PassThrough, writeTo: PassThrough): Duplex => {
    const side: Duplex = new Duplex({
      read() {
        readFrom.resume();
      },
      write(chunk: Buffer, _enc, cb) {
        writeTo.write(chunk, cb);
      },
      final(cb) {
        writeTo.end();
        cb();
      },
    });
    readFrom.on('data', (chunk: Buffer) => {
      if (!side.push(chunk)) readFrom.pause();
    });
    readFrom.on('end', () => side.push(null));
    return side;
  };
  return [make(bToA, aToB), make(aToB, bToA)];
}

async function tcpPair(): Promise<{ clientSocket: Socket; serverSocket: Socket; close: () => void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const clientSocket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(clientSocket, 'connect');
  const [serverSocket] = await accepted;
  return { clientSocket, serverSocket, close: () => server.close() };
}

/** Collects `bytes` bytes (or until end) without destroying the stream, unlike `for await`. */
function readAll(stream: Duplex, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const finish = (): void => {
      stream.off('data', onData);
      stream.off('end', finish);
      stream.off('error', reject);
      stream.pause();
      resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= bytes) finish();
    };
    stream.on('data', onData);
    stream.on('end', finish);
    stream.on('error', reject);
  });
}

async function errorOf(stream: Duplex): Promise<unknown> {
  const [err] = (await once(stream, 'error').catch((e: unknown) => [e])) as [unknown];
  return err;
}

function isCode(code: string, message?: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof HeadwayError && err.code === code && (message === undefined || message.test(err.message));
}

describe('NoiseConnection', () => {
  it('carries 8 MiB each way over TCP and exposes the peer key and version', async () => {
    const { client, server, machineKey } = sessions();
    const { clientSocket, serverSocket, close } = await tcpPair();
    const a = new NoiseConnection(clientSocket, client);
    const b = new NoiseConnection(serverSocket, server);
    assert.equal(b.peerMachineKey, machineKey.publicKey('machine'));
    assert.equal(b.protocolVersion, 145);
    assert.ok(a.handshakeHash.equals(b.handshakeHash));
    const upstream = randomBytes(8 << 20);
    const downstream = randomBytes(8 << 20);
    const gotUp = readAll(b, upstream.length);
    const gotDown = readAll(a, downstream.length);
    a.write(upstream);
    b.write(downstream);
    assert.ok((await gotUp).equals(upstream));
    assert.ok((await gotDown).equals(downstream));
    assert.equal(a.stats().plaintextBytesOut, upstream.length);
    assert.ok(b.stats().recordsIn >= Math.ceil(upstream.length / MAX_PLAINTEXT_BYTES));
    a.destroy();
    await once(b, 'close');
    close();
  });

  it('reassembles records delivered one byte at a time', async () => {
    const { client, server } = sessions();
    const [rawA, rawB] = pipePair();
    const b = new NoiseConnection(rawB, server);
    const message = randomBytes(10_000);
    const wire = encodeRecords(client.send, [message]);
    for (const byte of wire) rawA.write(Buffer.from([byte]));
    assert.ok((await readAll(b, message.length)).equals(message));
    b.destroy();
  });

  it('takes records that arrived with the handshake as initialData', async () => {
    const { client, server } = sessions();
    const [rawA, rawB] = pipePair();
    const first = encodeRecords(client.send, [Buffer.from('early')]);
    const second = encodeRecords(client.send, [Buffer.from(' bird')]);
    const b = new NoiseConnection(rawB, server, { initialData: first.subarray(0, 10) });
    rawA.write(Buffer.concat([first.subarray(10), second]));
    assert.equal((await readAll(b, 10)).toString(), 'early bird');
    b.destroy();
  });

  it('writes records of at most 4077 plaintext bytes and skips empty ones on read', async () => {
    const { client, server } = sessions();
    const [rawA, rawB] = pipePair();
    const a = new NoiseConnection(rawA, client);
    const wireChunks: Buffer[] = [];
    rawB.on('data', (chunk: Buffer) => wireChunks.push(chunk));
    a.write(Buffer.alloc(10_000, 1));
    await new Promise((resolve) => setImmediate(resolve));
    const wire = Buffer.concat(wireChunks);
    const lengths: number[] = [];
    for (let offset = 0; offset < wire.length; offset += 3 + wire.readUInt16BE(offset + 1)) {
      assert.equal(wire[offset], 4);
      lengths.push(wire.readUInt16BE(offset + 1));
    }
    assert.deepEqual(lengths, [4093, 4093, 10_000 - 2 * 4077 + 16]);
    const decoder = new RecordDecoder(server.receive, () => 'test');
    assert.equal(Buffer.concat(decoder.decode(wire)).length, 10_000);
    // An empty record in the middle is skipped.
    const withEmpty = Buffer.concat([encodeRecords(client.send, []), encodeRecords(client.send, [Buffer.from('x')])]);
    assert.deepEqual(decoder.decode(withEmpty), [Buffer.from('x')]);
    a.destroy();
  });

  const faults: Array<{ name: string; wire: (s: NoiseSession) => Buffer; code: string; message: RegExp }> = [
    {
      name: 'a flipped ciphertext bit',
      wire: (s) => flip(encodeRecords(s.send, [Buffer.from('hello')]), 6),
      code: 'HW_NOISE_DECRYPT_FAILED',
      message: /decrypting record 0: message authentication failed/,
    },
    {
      name: 'a replayed record',
      wire: (s) => {
        const record = encodeRecords(s.send, [Buffer.from('once')]);
        return Buffer.concat([record, record]);
      },
      code: 'HW_NOISE_DECRYPT_FAILED',
      message: /decrypting record 1/,
    },
    {
      name: 'records swapped in order',
      wire: (s) => {
        const first = encodeRecords(s.send, [Buffer.from('one')]);
        const second = encodeRecords(s.send, [Buffer.from('two')]);
        return Buffer.concat([second, first]);
      },
      code: 'HW_NOISE_DECRYPT_FAILED',
      message: /decrypting record 0/,
    },
    {
      name: 'a record of 4097 bytes on the wire',
      wire: () => Buffer.from([4, 0x0f, 0xfe]),
      code: 'HW_NOISE_RECORD_TOO_LARGE',
      message: /4097 bytes on the wire, limit 4096/,
    },
    {
      name: 'a frame of type 3 after the handshake',
      wire: () => Buffer.from([3, 0, 2, 0x68, 0x69]),
      code: 'HW_NOISE_BAD_MESSAGE_TYPE',
      message: /message type 3, want 4/,
    },
    {
      name: 'garbage (an HTTP request)',
      wire: () => Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      code: 'HW_NOISE_BAD_MESSAGE_TYPE',
      message: /message type 71/,
    },
    {
      name: 'a ciphertext shorter than the tag',
      wire: () => Buffer.from([4, 0, 15, ...Buffer.alloc(15)]),
      code: 'HW_NOISE_BAD_LENGTH',
      message: /shorter than the 16-byte tag/,
    },
  ];
  for (const fault of faults) {
    it(`destroys itself and its transport on ${fault.name}`, async () => {
      const { client, server } = sessions();
      const { clientSocket, serverSocket, close } = await tcpPair();
      const b = new NoiseConnection(serverSocket, server);
      b.resume();
      const failure = errorOf(b);
      clientSocket.write(fault.wire(client));
      assert.ok(isCode(fault.code, fault.message)(await failure), String(await failure));
      await once(clientSocket, 'close');
      assert.ok(serverSocket.destroyed);
      close();
    });
  }

  it('fails with HW_NOISE_TRUNCATED when the stream ends inside a record', async () => {
    const { client, server } = sessions();
    const { clientSocket, serverSocket, close } = await tcpPair();
    const b = new NoiseConnection(serverSocket, server);
    b.resume();
    const failure = errorOf(b);
    const record = encodeRecords(client.send, [Buffer.from('cut short')]);
    clientSocket.end(record.subarray(0, record.length - 1));
    assert.ok(isCode('HW_NOISE_TRUNCATED', /stream ended inside record 0 \(27 bytes of it received\)/)(await failure));
    close();
  });

  it('ends cleanly when the peer ends between records', async () => {
    const { client, server } = sessions();
    const { clientSocket, serverSocket, close } = await tcpPair();
    const a = new NoiseConnection(clientSocket, client);
    const b = new NoiseConnection(serverSocket, server);
    const closed = once(b, 'close');
    a.end('bye');
    assert.equal((await readAll(b, 100)).toString(), 'bye');
    await closed;
    assert.equal(b.errored, null);
    close();
  });

  it('fails with HW_NOISE_TRANSPORT_FAILED when the peer resets the connection', async () => {
    const { server } = sessions();
    const { clientSocket, serverSocket, close } = await tcpPair();
    const b = new NoiseConnection(serverSocket, server);
    b.resume();
    const failure = errorOf(b);
    clientSocket.resetAndDestroy();
    assert.ok(isCode('HW_NOISE_TRANSPORT_FAILED', /transport failed: read ECONNRESET/)(await failure));
    close();
  });

  it('fails a write stuck waiting for drain when it is destroyed', async () => {
    // http2's socket wrapper asserts if a write or shutdown it started never completes.
    const { client } = sessions();
    const stuck = new Duplex({ highWaterMark: 1, read() {}, write() {} });
    const a = new NoiseConnection(stuck, client);
    a.on('error', () => {});
    const written = new Promise<unknown>((resolve) => a.write(Buffer.from('never drains'), resolve));
    a.write(Buffer.from('queued behind it'));
    a.destroy();
    assert.ok(isCode('HW_NOISE_TRANSPORT_FAILED', /write pending/)(await written));
  });

  it('stops at the last nonce: 2^64-1 is never used, in either direction', () => {
    const last = 0xffffffffffffffffn;
    const key = randomBytes(32);
    const sender = new CipherState(key, 'big-endian', last - 1n);
    const receiver = new CipherState(key, 'big-endian', last - 1n);
    const wire = encodeRecords(sender, [Buffer.from('last one')]);
    assert.deepEqual(new RecordDecoder(receiver, () => 'test').decode(wire), [Buffer.from('last one')]);
    assert.equal(sender.counter, last);
    assert.throws(() => encodeRecords(sender, [Buffer.from('one too many')]), isCode('HW_NOISE_NONCE_EXHAUSTED'));
    const beyond = new CipherState(key, 'big-endian', last);
    assert.throws(() => new RecordDecoder(beyond, () => 'test').decode(wire), isCode('HW_NOISE_NONCE_EXHAUSTED'));
  });

  it('writes the counter big-endian into nonce bytes 4..11 across the 32-bit boundary', () => {
    const key = randomBytes(32);
    const start = 0xffffffffn;
    const ours = new CipherState(key, 'big-endian', start);
    const wire = encodeRecords(ours, [Buffer.from('a'), Buffer.from('b')]);
    const twice = Buffer.concat([wire, encodeRecords(ours, [Buffer.from('c')])]);
    assert.deepEqual(new RecordDecoder(new CipherState(key, 'big-endian', start), () => 't').decode(twice), [Buffer.from('ab'), Buffer.from('c')]);
    assert.equal(ours.counter, start + 2n);
  });
});

function flip(bytes: Buffer, offset: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[offset] = (copy[offset] ?? 0) ^ 0x01;
  return copy;
}
