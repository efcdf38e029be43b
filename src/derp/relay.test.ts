import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import nacl from 'tweetnacl';
import { DerpClient } from '../client/derp/index.js';
import { Curve25519PrivateKey, publicKeyBytes, type NodePublicKey } from '../key/index.js';
import { FrameType, PeerGoneReason } from './frame.js';
import { startTestDerp, waitUntil, type TestDerp } from './testing.js';

const DISCO_MAGIC = Buffer.from([0x54, 0x53, 0xf0, 0x9f, 0x92, 0xac]);

function discoPacket(): Buffer {
  return Buffer.concat([DISCO_MAGIC, randomBytes(32 + 24 + 16)]);
}

async function client(derp: TestDerp, key = Curve25519PrivateKey.generate(), extra: Partial<Parameters<typeof DerpClient.connect>[0]> = {}): Promise<DerpClient> {
  return DerpClient.connect({ url: derp.url, privateKey: key, ...extra });
}

function nextPacket(c: DerpClient): Promise<{ src: NodePublicKey; packet: Buffer }> {
  return new Promise((resolve) => {
    const stop = c.onPacket((src, packet) => {
      stop();
      resolve({ src, packet: Buffer.from(packet) });
    });
  });
}

/** A raw TCP connection that did the HTTP upgrade and read the 101 + ServerKey. */
async function rawUpgrade(derp: TestDerp, headers = ''): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void> }> {
  const socket = connect(derp.port, '127.0.0.1');
  let received = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(`GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n${headers}\r\n`);
  return { socket, received: () => received, closed };
}

describe('DerpServer', () => {
  let derp: TestDerp;
  before(async () => {
    derp = await startTestDerp();
  });
  after(async () => {
    await derp.close();
  });

  it('relays packets between two clients both ways, with the sender as source', async () => {
    const a = await client(derp);
    const b = await client(derp);
    try {
      const toB = nextPacket(b);
      a.sendPacket(b.publicKey, Buffer.from('hello b'));
      const gotB = await toB;
      assert.equal(gotB.src, a.publicKey);
      assert.equal(gotB.packet.toString(), 'hello b');

      const toA = nextPacket(a);
      b.sendPacket(a.publicKey, Buffer.from('hello a'));
      const gotA = await toA;
      assert.equal(gotA.src, b.publicKey);
      assert.equal(gotA.packet.toString(), 'hello a');
    } finally {
      a.close();
      b.close();
    }
  });

  it('relays a maximal 64 KiB packet and many packets in order', async () => {
    const a = await client(derp);
    const b = await client(derp);
    try {
      const received: Buffer[] = [];
      b.onPacket((_src, packet) => received.push(Buffer.from(packet)));
      const big = randomBytes(64 << 10);
      a.sendPacket(b.publicKey, big);
      for (let i = 0; i < 20; i++) a.sendPacket(b.publicKey, Buffer.from(`packet ${i}`));
      await waitUntil('b received 21 packets', () => received.length === 21);
      assert.ok(received[0]!.equals(big));
      assert.deepEqual(
        received.slice(1).map((p) => p.toString()),
        Array.from({ length: 20 }, (_, i) => `packet ${i}`),
      );
    } finally {
      a.close();
      b.close();
    }
  });

  it('sends ServerInfo with protocol version 2 and no rate limit by default', async () => {
    const a = await client(derp);
    try {
      assert.deepEqual(a.serverInfo, { version: 2, tokenBucketBytesPerSecond: 0, tokenBucketBytesBurst: 0 });
      assert.equal(a.serverPublicKey, derp.relay.publicKey);
    } finally {
      a.close();
    }
  });

  it('answers a ping with a pong carrying the same 8 bytes', async () => {
    const a = await client(derp);
    try {
      const before = derp.relay.stats.pongsSent;
      const echo = await a.ping();
      assert.equal(echo.length, 8);
      assert.equal(derp.relay.stats.pongsSent, before + 1);
    } finally {
      a.close();
    }
  });

  it('sends PeerGone(disconnected) to a client that received packets from a peer that left', async () => {
    const a = await client(derp);
    const b = await client(derp);
    const c = await client(derp);
    try {
      const toB = nextPacket(b);
      a.sendPacket(b.publicKey, Buffer.from('x'));
      await toB;
      const goneAtB = new Promise<{ peer: NodePublicKey; reason: number }>((resolve) => b.onPeerGone(resolve));
      let goneAtC = 0;
      c.onPeerGone(() => goneAtC++);
      a.close();
      const gone = await goneAtB;
      assert.equal(gone.peer, a.publicKey);
      assert.equal(gone.reason, PeerGoneReason.Disconnected);
      // c never heard from a, so it is not told; a ping round trip orders the check after any frame.
      await c.ping();
      assert.equal(goneAtC, 0);
    } finally {
      b.close();
      c.close();
    }
  });

  it('answers a disco packet to an absent key with PeerGone(not here), and stays silent for other packets', async () => {
    const a = await client(derp);
    try {
      const absent = Curve25519PrivateKey.generate().publicKey('node');
      const gone: Array<{ peer: NodePublicKey; reason: number }> = [];
      a.onPeerGone((g) => gone.push(g));
      a.sendPacket(absent, Buffer.from('not disco'));
      await a.ping();
      assert.deepEqual(gone, []);
      a.sendPacket(absent, discoPacket());
      await a.ping();
      assert.deepEqual(gone, [{ peer: absent, reason: PeerGoneReason.NotHere }]);
    } finally {
      a.close();
    }
  });

  it('delivers to the newest connection of a key, to the last one that spoke after that, and keeps the key present while one remains', async () => {
    const key = Curve25519PrivateKey.generate();
    const first = await client(derp, key);
    const b = await client(derp);
    const second = await client(derp, key);
    try {
      const atFirst: string[] = [];
      const atSecond: string[] = [];
      first.onPacket((_s, p) => atFirst.push(p.toString()));
      second.onPacket((_s, p) => atSecond.push(p.toString()));
      let goneAtB = 0;
      b.onPeerGone(() => goneAtB++);

      b.sendPacket(key.publicKey('node'), Buffer.from('one'));
      await waitUntil('second got "one"', () => atSecond.length === 1);
      assert.deepEqual(atFirst, []);

      // The older connection speaks, so it becomes the active one (Tailscale's last writer).
      await first.ping();
      b.sendPacket(key.publicKey('node'), Buffer.from('two'));
      await waitUntil('first got "two"', () => atFirst.length === 1);
      assert.deepEqual(atFirst, ['two']);

      // Closing one connection of the key is not the key leaving: no PeerGone, and the rest get packets.
      first.close();
      await waitUntil('relay sees one connection of the key', () => derp.relay.stats.currentClients === 2);
      b.sendPacket(key.publicKey('node'), Buffer.from('three'));
      await waitUntil('second got "three"', () => atSecond.length === 2);
      await b.ping();
      assert.equal(goneAtB, 0);
      assert.ok(derp.relay.isConnected(key.publicKey('node')));
    } finally {
      first.close();
      second.close();
      b.close();
    }
  });

  it('tracks NotePreferred as home clients and forgets it when the client leaves', async () => {
    const a = await client(derp);
    const base = derp.relay.stats.homeClients;
    a.notePreferred(true);
    await a.ping();
    assert.equal(derp.relay.stats.homeClients, base + 1);
    a.close();
    await waitUntil('home client count drops', () => derp.relay.stats.homeClients === base);
  });

  it('refuses to send a packet over 64 KiB on the client side', async () => {
    const a = await client(derp);
    try {
      assert.throws(() => a.sendPacket(a.publicKey, Buffer.alloc((64 << 10) + 1)), { code: 'HW_CLIENT_DERP_PACKET_TOO_LARGE' });
    } finally {
      a.close();
    }
  });

  it('skips frames of unknown type and keeps the connection', async () => {
    const a = await client(derp);
    try {
      const before = derp.relay.stats.framesSkipped;
      a.sendFrame(0x7f, randomBytes(100));
      a.sendFrame(FrameType.Pong, randomBytes(8));
      await a.ping();
      assert.equal(derp.relay.stats.framesSkipped, before + 2);
    } finally {
      a.close();
    }
  });

  it('disconnect() closes every connection of a node key', async () => {
    const key = Curve25519PrivateKey.generate();
    const a1 = await client(derp, key);
    const a2 = await client(derp, key);
    assert.equal(derp.relay.disconnect(key.publicKey('node')), 2);
    await Promise.all([a1.closed, a2.closed]);
    assert.equal(derp.relay.isConnected(key.publicKey('node')), false);
  });
});

describe('DerpServer with bad clients', () => {
  let derp: TestDerp;
  let a: DerpClient;
  let b: DerpClient;
  before(async () => {
    derp = await startTestDerp({ handshakeTimeoutMs: 200 });
    a = await client(derp);
    b = await client(derp);
  });
  after(async () => {
    a.close();
    b.close();
    await derp.close();
  });

  /** The healthy pair still exchanges packets. */
  async function othersStillServed(): Promise<void> {
    const toB = nextPacket(b);
    a.sendPacket(b.publicKey, Buffer.from('still here'));
    assert.equal((await toB).packet.toString(), 'still here');
    const fresh = await client(derp);
    fresh.close();
  }

  const cases: Array<{ name: string; reason: string; act: (c: DerpClient) => void }> = [
    {
      name: 'a SendPacket longer than 32 + 64 KiB',
      reason: 'frame_too_large',
      act: (c) => c.sendFrame(FrameType.SendPacket, Buffer.alloc(0), { declaredLength: 32 + (64 << 10) + 1 }),
    },
    { name: 'a SendPacket shorter than a key', reason: 'bad_frame', act: (c) => c.sendFrame(FrameType.SendPacket, randomBytes(10)) },
    { name: 'a NotePreferred of 2 bytes', reason: 'bad_frame', act: (c) => c.sendFrame(FrameType.NotePreferred, Buffer.from([1, 1])) },
    { name: 'a Ping of 4 bytes', reason: 'bad_frame', act: (c) => c.sendFrame(FrameType.Ping, randomBytes(4)) },
    { name: 'a Ping of 1001 bytes', reason: 'bad_frame', act: (c) => c.sendFrame(FrameType.Ping, randomBytes(1001)) },
    { name: 'a mesh ForwardPacket', reason: 'mesh_frame', act: (c) => c.sendFrame(FrameType.ForwardPacket, randomBytes(70)) },
    { name: 'a mesh WatchConns', reason: 'mesh_frame', act: (c) => c.sendFrame(FrameType.WatchConns, Buffer.alloc(0)) },
    { name: 'a mesh ClosePeer', reason: 'mesh_frame', act: (c) => c.sendFrame(FrameType.ClosePeer, randomBytes(32)) },
    {
      name: 'a frame cut short by EOF',
      reason: 'truncated_frame',
      act: (c) => {
        c.sendFrame(FrameType.SendPacket, randomBytes(10), { declaredLength: 100 });
        setTimeout(() => c.close(), 20);
      },
    },
  ];
  for (const { name, reason, act } of cases) {
    it(`closes only the client that sends ${name} (${reason})`, async () => {
      const bad = await client(derp);
      const before = derp.relay.stats.closed[reason as keyof typeof derp.relay.stats.closed];
      act(bad);
      await bad.closed;
      await waitUntil(`close reason ${reason} counted`, () => derp.relay.stats.closed[reason as keyof typeof derp.relay.stats.closed] === before + 1);
      await othersStillServed();
    });
  }

  it('closes a connection whose first frame is garbage', async () => {
    const raw = await rawUpgrade(derp);
    await waitUntil('101 and ServerKey received', () => raw.received().includes(Buffer.from([0x44, 0x45, 0x52, 0x50, 0xf0, 0x9f, 0x94, 0x91])));
    assert.match(raw.received().toString('latin1'), /^HTTP\/1\.1 101 Switching Protocols\r\nUpgrade: DERP\r\n/);
    const before = derp.relay.stats.closed.bad_first_frame;
    raw.socket.write('GET / HTTP/1.1\r\nthis is not DERP\r\n\r\n');
    await raw.closed;
    assert.equal(derp.relay.stats.closed.bad_first_frame, before + 1);
    await othersStillServed();
  });

  it('closes a connection whose ClientInfo box does not open', async () => {
    const raw = await rawUpgrade(derp);
    await waitUntil('ServerKey received', () => raw.received().length > 0);
    const before = derp.relay.stats.closed.bad_client_info;
    const payload = Buffer.concat([randomBytes(32), randomBytes(24), randomBytes(40)]);
    const header = Buffer.from([FrameType.ClientInfo, 0, 0, 0, 0]);
    header.writeUInt32BE(payload.length, 1);
    raw.socket.write(Buffer.concat([header, payload]));
    await raw.closed;
    assert.equal(derp.relay.stats.closed.bad_client_info, before + 1);
    await othersStillServed();
  });

  it('closes a client that never speaks after the handshake deadline', async () => {
    const raw = await rawUpgrade(derp);
    const before = derp.relay.stats.closed.handshake_timeout;
    await raw.closed;
    assert.equal(derp.relay.stats.closed.handshake_timeout, before + 1);
    await othersStillServed();
  });
});

describe('DerpServer admission', () => {
  it('refuses a key the admit callback rejects, and admits the others', async () => {
    const allowed = Curve25519PrivateKey.generate();
    const asked: NodePublicKey[] = [];
    const derp = await startTestDerp({
      admit: (nodeKey) => {
        asked.push(nodeKey);
        return nodeKey === allowed.publicKey('node');
      },
    });
    try {
      const stranger = Curve25519PrivateKey.generate();
      await assert.rejects(client(derp, stranger), { code: 'HW_CLIENT_DERP_CLOSED' });
      const ok = await client(derp, allowed);
      ok.close();
      assert.deepEqual(asked, [stranger.publicKey('node'), allowed.publicKey('node')]);
      assert.equal(derp.relay.stats.closed.refused, 1);
      assert.match(await derp.registry.metrics(), /headway_derp_connections_closed_total\{reason="refused"\} 1/);
    } finally {
      await derp.close();
    }
  });

  it('waits for an asynchronous answer before reading packets, and refuses when the callback fails', async () => {
    let release!: (ok: boolean) => void;
    const allowed = Curve25519PrivateKey.generate();
    const failing = Curve25519PrivateKey.generate();
    const derp = await startTestDerp({
      admit: (nodeKey) => {
        if (nodeKey === failing.publicKey('node')) return Promise.reject(new Error('state unavailable'));
        if (nodeKey === allowed.publicKey('node')) return new Promise<boolean>((resolve) => (release = resolve));
        return true;
      },
    });
    try {
      const b = await client(derp);
      const received = nextPacket(b);
      const pending = client(derp, allowed, { waitForServerInfo: false });
      const a = await pending;
      // Sent before admission: held, then relayed once admitted.
      a.sendPacket(b.publicKey, Buffer.from('early'));
      await waitUntil('admit callback called', () => release !== undefined);
      release(true);
      assert.equal((await received).packet.toString(), 'early');
      await assert.rejects(client(derp, failing), { code: 'HW_CLIENT_DERP_CLOSED' });
      assert.equal(derp.relay.stats.closed.admit_error, 1);
      a.close();
      b.close();
    } finally {
      await derp.close();
    }
  });
});

describe('DerpServer timers and limits', () => {
  it('sends keep-alives at the configured interval', async () => {
    const derp = await startTestDerp({ keepAliveMs: 30, keepAliveJitterMs: 0 });
    try {
      const a = await client(derp);
      await new Promise<void>((resolve) => a.onKeepAlive(resolve));
      assert.ok(derp.relay.stats.keepAlivesSent >= 1);
      a.close();
    } finally {
      await derp.close();
    }
  });

  it('advertises its rate limit in ServerInfo and paces a client that exceeds it', async () => {
    const derp = await startTestDerp({ rateLimit: { bytesPerSecond: 1_000_000, burstBytes: 70_000 } });
    try {
      const a = await client(derp);
      const b = await client(derp);
      assert.equal(a.serverInfo?.tokenBucketBytesPerSecond, 1_000_000);
      assert.equal(a.serverInfo?.tokenBucketBytesBurst, 70_000);
      let got = 0;
      b.onPacket(() => got++);
      // Raw frames bypass the client's own limiter: 4 x 64 KiB against a 70 kB bucket.
      const payload = Buffer.concat([publicKeyBytes(b.publicKey), randomBytes(64 << 10)]);
      for (let i = 0; i < 4; i++) a.sendFrame(FrameType.SendPacket, payload);
      await waitUntil('all 4 packets relayed', () => got === 4);
      assert.ok(derp.relay.stats.rateLimitWaits >= 1, 'the reader was paused at least once');
      a.close();
      b.close();
    } finally {
      await derp.close();
    }
  });

  it('delivers a burst far larger than the send queue to a receiver that reads, without drops', async () => {
    // Regression: packets once waited for the end of the event-loop turn, so one 64 KiB read
    // from a sender overflowed a receiver's queue even when that receiver was idle.
    const derp = await startTestDerp({ sendQueueDepth: 4 });
    try {
      const a = await client(derp);
      const b = await client(derp);
      let got = 0;
      b.onPacket(() => got++);
      const frame = Buffer.concat([Buffer.from([FrameType.SendPacket, 0, 0, 0, 32 + 100]), publicKeyBytes(b.publicKey), randomBytes(100)]);
      a.writeRaw(Buffer.concat(Array.from({ length: 300 }, () => frame)));
      await waitUntil('all 300 packets relayed', () => got === 300);
      assert.equal(derp.relay.stats.dropped.queue_head, 0);
      a.close();
      b.close();
    } finally {
      await derp.close();
    }
  });

  it('drops the oldest queued packets for a receiver that does not read, without stalling others', async () => {
    const derp = await startTestDerp({ writeTimeoutMs: 0, sendQueueDepth: 4 });
    try {
      const a = await client(derp);
      const b = await client(derp);
      const slow = await client(derp);
      slow.pauseReading();
      const big = randomBytes(60_000);
      // Enough to fill the kernel buffers, our write buffer, then the queue.
      for (let i = 0; i < 400 && derp.relay.stats.dropped.queue_head === 0; i++) {
        a.sendPacket(slow.publicKey, big);
        if (i % 20 === 19) await a.ping();
      }
      await waitUntil('queue_head drops counted', () => derp.relay.stats.dropped.queue_head > 0);
      const toB = nextPacket(b);
      a.sendPacket(b.publicKey, Buffer.from('not blocked'));
      assert.equal((await toB).packet.toString(), 'not blocked');
      a.close();
      b.close();
      slow.close();
    } finally {
      await derp.close();
    }
  });

  it('closes a receiver that leaves our writes undrained past the write timeout', async () => {
    const derp = await startTestDerp({ writeTimeoutMs: 100 });
    try {
      const a = await client(derp);
      const slow = await client(derp);
      slow.pauseReading();
      const big = randomBytes(60_000);
      for (let i = 0; i < 400 && derp.relay.stats.closed.write_timeout === 0; i++) {
        a.sendPacket(slow.publicKey, big);
        if (i % 20 === 19) await a.ping();
      }
      await waitUntil('write_timeout counted', () => derp.relay.stats.closed.write_timeout === 1);
      await a.ping();
      a.close();
      slow.close();
    } finally {
      await derp.close();
    }
  });
});

describe('DerpServer transports', () => {
  it('relays between a WebSocket client and a plain client', async () => {
    const derp = await startTestDerp();
    try {
      const ws = await DerpClient.connect({ url: derp.url.replace('http:', 'ws:'), privateKey: Curve25519PrivateKey.generate() });
      const plain = await client(derp);
      const toPlain = nextPacket(plain);
      ws.sendPacket(plain.publicKey, Buffer.from('over websocket'));
      assert.equal((await toPlain).src, ws.publicKey);
      const toWs = nextPacket(ws);
      plain.sendPacket(ws.publicKey, Buffer.from('back'));
      assert.equal((await toWs).packet.toString(), 'back');
      assert.ok((await ws.ping()).length === 8);
      ws.close();
      plain.close();
    } finally {
      await derp.close();
    }
  });

  it('skips the 101 for Derp-Fast-Start and reads a ClientInfo sent with the request', async () => {
    const derp = await startTestDerp();
    try {
      const key = Curve25519PrivateKey.generate();
      const serverKey = publicKeyBytes(derp.relay.publicKey);
      const nonce = nacl.randomBytes(24);
      const box = nacl.box(Buffer.from('{"version":2,"CanAckPings":true}'), nonce, serverKey, key.rawBytes());
      const payload = Buffer.concat([key.publicBytes, nonce, box]);
      const frame = Buffer.concat([Buffer.from([FrameType.ClientInfo, 0, 0, 0, 0]), payload]);
      frame.writeUInt32BE(payload.length, 1);
      const socket = connect(derp.port, '127.0.0.1');
      let received = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      socket.write(Buffer.concat([Buffer.from('GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\nDerp-Fast-Start: 1\r\n\r\n'), frame]));
      // ServerKey (5 + 40) then ServerInfo.
      await waitUntil('ServerKey and ServerInfo received', () => received.length > 45 && received[45] === FrameType.ServerInfo);
      assert.equal(received[0], FrameType.ServerKey);
      assert.ok(received.subarray(13, 45).equals(serverKey));
      socket.destroy();
    } finally {
      await derp.close();
    }
  });
});
