// The control transport end to end over real sockets: /key, the /ts2021 upgrade, the Noise
// handshake, the early payload, HTTP/2 with the machine key bound to every request, the
// WebSocket variant, limits, bad input and faults. The client side is our real protocol client
// (src/client) where the protocol is followed, and raw sockets where it is broken on purpose.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { WebSocket, createWebSocketStream } from 'ws';
import { compress } from 'zstd-napi';
import { Curve25519PrivateKey } from '../key/index.js';
import { HeadwayError, type ErrorSpec } from '../util/headway-error.js';
import { MIN_CAPVER } from '../tailcfg/index.js';
import { NoiseConnection, RecordDecoder, beginClientHandshake, encodeRecords } from '../noise/index.js';
import { ControlClient, dialNoise } from '../client/index.js';
import { defaultNoiseHandler, pathOf, readRequestBody, type NoiseRequestContext, type NoiseRequestHandler } from './index.js';
import { expectNoLeaks, rawExchange, rawNoiseDial, startTestControlServer, upgradeRequestText, waitFor, type TestControlServer } from './testing.js';

const TEAPOT: ErrorSpec = { code: 'HW_CONTROL_TEST_TEAPOT', status: 418, meaning: 'test', fix: 'test' };

/** What the test handler saw, for assertions about contexts and cleanup. */
const seen = { contexts: [] as NoiseRequestContext[], streamsClosed: 0 };

const testHandler: NoiseRequestHandler = async (req, res, ctx) => {
  seen.contexts.push(ctx);
  const path = pathOf(req);
  switch (path) {
    case '/test/echo': {
      const body = await readRequestBody(req, ctx.maxRequestBodyBytes);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          machineKey: ctx.machineKey,
          protocolVersion: ctx.protocolVersion,
          via: ctx.via,
          connectionId: ctx.connectionId,
          challenge: ctx.nodeKeyChallenge,
          bytes: body.length,
          sha256: createHash('sha256').update(body).digest('hex'),
          authority: req.headers[':authority'],
          scheme: req.headers[':scheme'],
        }),
      );
      return;
    }
    case '/test/tick': {
      // A long poll: one chunk now and one every 20 ms until the client goes away.
      res.writeHead(200);
      res.write('tick\n');
      const timer = setInterval(() => res.write('tick\n'), 20);
      res.once('close', () => {
        clearInterval(timer);
        seen.streamsClosed++;
      });
      return;
    }
    case '/machine/map': {
      // Map-stream framing built here from the spec (4-byte LE length + zstd frames), not by
      // server code: one message of three concatenated frames, one big message, one keep-alive.
      const body = JSON.parse((await readRequestBody(req, ctx.maxRequestBodyBytes)).toString()) as { Compress?: string };
      assert.equal(body.Compress, 'zstd');
      const first = Buffer.from(JSON.stringify({ Domain: 'example.com', Peers: [] }));
      const framed = (payload: Buffer): Buffer => {
        const length = Buffer.alloc(4);
        length.writeUInt32LE(payload.length);
        return Buffer.concat([length, payload]);
      };
      const cut = [first.subarray(0, 7), first.subarray(7, 20), first.subarray(20)].map((part) => compress(part));
      const big = Buffer.from(JSON.stringify({ DNSConfig: { Domains: Array.from({ length: 60_000 }, (_, i) => `d${i}.example`) } }));
      res.writeHead(200);
      res.write(framed(Buffer.concat(cut)));
      res.write(framed(compress(big)));
      res.end(framed(compress(Buffer.from('{"KeepAlive":true}'))));
      return;
    }
    case '/test/throw':
      throw new Error('boom: internal detail');
    case '/test/teapot':
      throw new HeadwayError(TEAPOT, '/test/teapot: short and stout');
    default:
      await defaultNoiseHandler(req, res, ctx);
  }
};

describe('control transport', () => {
  let server: TestControlServer;

  // The default deadlines: client and server share this process, so on a loaded machine a
  // stall of a few hundred milliseconds would expire a short preface deadline on a client that
  // is following the protocol (its requests then fail with code 2). The deadline tests below
  // get their own server with a short one.
  before(async () => {
    server = await startTestControlServer({ handler: testHandler });
  });
  after(async () => {
    await server.close();
  });

  describe('GET /key', () => {
    for (const query of ['?v=145', '?v=51', '']) {
      it(`answers the Noise key as JSON for /key${query}`, async () => {
        const res = await fetch(`${server.url}/key${query}`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'application/json');
        assert.deepEqual(await res.json(), { legacyPublicKey: `mkey:${'0'.repeat(64)}`, publicKey: server.serverKey.publicKey('machine') });
      });
    }

    it('refuses a v that is not a number with 400', async () => {
      assert.equal((await fetch(`${server.url}/key?v=abc`)).status, 400);
    });

    it('refuses POST /key with 405', async () => {
      assert.equal((await fetch(`${server.url}/key`, { method: 'POST' })).status, 405);
    });
  });

  describe('upgrade and HTTP/2', () => {
    it('binds every request to the authenticated machine key and version', async () => {
      const machineKey = Curve25519PrivateKey.generate();
      const client = await ControlClient.connect({ serverUrl: server.url, machineKey, protocolVersion: 109 });
      const answers = await Promise.all([1, 2, 3].map((n) => client.postJson('/test/echo', { n })));
      const ids = new Set<number>();
      for (const res of answers) {
        assert.equal(res.status, 200);
        const body = res.json as Record<string, unknown>;
        assert.equal(body['machineKey'], machineKey.publicKey('machine'));
        assert.equal(body['protocolVersion'], 109);
        assert.equal(body['via'], 'http-upgrade');
        assert.equal(body['challenge'], client.earlyPayload?.nodeKeyChallenge);
        assert.equal(body['scheme'], 'https');
        ids.add(body['connectionId'] as number);
      }
      assert.equal(ids.size, 1);
      await client.close();
      await expectNoLeaks(server.transport);
    });

    it('sends an early payload with a fresh chalpub key per connection', async () => {
      const a = await ControlClient.connect({ serverUrl: server.url });
      const b = await ControlClient.connect({ serverUrl: server.url });
      assert.match(a.earlyPayload?.nodeKeyChallenge ?? '', /^chalpub:[0-9a-f]{64}$/);
      assert.notEqual(a.earlyPayload?.nodeKeyChallenge, b.earlyPayload?.nodeKeyChallenge);
      await Promise.all([a.close(), b.close()]);
    });

    it('writes exactly the 101 head, the 51-byte response, the early payload record, then HTTP/2', async () => {
      const dial = await rawNoiseDial(server.port, server.serverKey.publicBytes);
      assert.equal(dial.head, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n\r\n');
      const decoder = new RecordDecoder(dial.session.receive, () => 'test');
      let plaintext = Buffer.concat(decoder.decode(dial.rest));
      dial.socket.on('data', (chunk: Buffer) => (plaintext = Buffer.concat([plaintext, ...decoder.decode(chunk)])));
      dial.socket.resume();
      await waitFor(() => plaintext.length >= 9 + 95 + 9, 'early payload and the first HTTP/2 frame header');
      assert.deepEqual([...plaintext.subarray(0, 5)], [0xff, 0xff, 0xff, 0x54, 0x53]);
      const jsonLength = plaintext.readUInt32BE(5);
      assert.equal(jsonLength, 95);
      assert.match(plaintext.subarray(9, 9 + jsonLength).toString(), /^\{"nodeKeyChallenge":"chalpub:[0-9a-f]{64}"\}$/);
      // Next: the server's HTTP/2 SETTINGS frame (type 4, stream 0).
      const frame = plaintext.subarray(9 + jsonLength);
      assert.equal(frame[3], 0x04);
      assert.equal(frame.readUInt32BE(5), 0);
      dial.socket.destroy();
      await expectNoLeaks(server.transport);
    });

    it('accepts the upgrade as GET too (headscale routes both methods)', async () => {
      const initiation = beginClientHandshake({ machineKey: Curve25519PrivateKey.generate(), controlPublic: server.serverKey.publicBytes, protocolVersion: 145 });
      const socket = netConnect(server.port, '127.0.0.1');
      let received = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
      socket.write(upgradeRequestText(initiation.message.toString('base64')).replace(/^POST/, 'GET'));
      const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n\r\n';
      await waitFor(() => received.length >= head.length + 51, 'the 101 and the response');
      assert.equal(received.subarray(0, head.length).toString('latin1'), head);
      initiation.finish(received.subarray(head.length, head.length + 51));
      socket.destroy();
      await expectNoLeaks(server.transport);
    });

    it('accepts the oldest supported version and refuses an older one with an error frame', async () => {
      const oldest = await ControlClient.connect({ serverUrl: server.url, protocolVersion: MIN_CAPVER });
      assert.equal((await oldest.postJson('/test/echo', {})).status, 200);
      await oldest.close();
      await assert.rejects(
        ControlClient.connect({ serverUrl: server.url, protocolVersion: MIN_CAPVER - 1 }),
        (err: unknown) => err instanceof HeadwayError && err.code === 'HW_NOISE_SERVER_REFUSED' && /client version too old; this server needs Tailscale 1\.34/.test(err.message),
      );
      assert.equal(server.transport.stats().refused['HW_CONTROL_UNSUPPORTED_VERSION'], 1);
    });

    it('answers 404 for unknown paths and 501 for client endpoints nobody handles', async () => {
      const client = await ControlClient.connect({ serverUrl: server.url });
      assert.equal((await client.postJson('/nope', {})).status, 404);
      assert.equal((await client.postJson('/machine/register', {})).status, 501);
      assert.equal((await client.postJson('/machine/update-health', {})).status, 501);
      assert.equal((await client.request('/machine/tka/bootstrap')).status, 501);
      await client.close();
    });

    it('turns a thrown error into 500 without details, and a HeadwayError into its status', async () => {
      const client = await ControlClient.connect({ serverUrl: server.url });
      const crashed = await client.request('/test/throw');
      assert.equal(crashed.status, 500);
      assert.equal(crashed.body.toString(), 'internal server error\n');
      const teapot = await client.request('/test/teapot');
      assert.equal(teapot.status, 418);
      assert.equal(teapot.body.toString(), '/test/teapot: short and stout\n');
      // The connection survives both.
      assert.equal((await client.postJson('/test/echo', {})).status, 200);
      await client.close();
    });

    it('carries a 1 MiB body intact (many records, HTTP/2 flow control)', async () => {
      const client = await ControlClient.connect({ serverUrl: server.url });
      const body = randomBytes(1 << 20);
      const res = await client.request('/test/echo', body);
      assert.equal(res.status, 200);
      assert.equal((res.json as Record<string, unknown>)['sha256'], createHash('sha256').update(body).digest('hex'));
      await client.close();
    });

    it('refuses bodies over 1 MiB with 413, with or without content-length', async () => {
      const client = await ControlClient.connect({ serverUrl: server.url });
      const body = randomBytes((1 << 20) + 1);
      const declared = await client.request('/test/echo', body, { method: 'POST', headers: { 'content-length': String(body.length) } });
      assert.equal(declared.status, 413);
      const streamed = await client.request('/test/echo', body, { method: 'POST' });
      assert.equal(streamed.status, 413);
      assert.match(streamed.body.toString(), /exceeds the limit of 1048576 bytes/);
      assert.equal((await client.postJson('/test/echo', {})).status, 200);
      await client.close();
    });

    it('streams a map response the client decodes (concatenated zstd frames, a 1 MB message)', async () => {
      const client = await ControlClient.connect({ serverUrl: server.url });
      const stream = await client.openMapStream({ Version: 145, Stream: true, Compress: 'zstd' });
      const messages = [];
      for await (const message of stream) messages.push(message);
      assert.equal(messages.length, 3);
      assert.deepEqual(messages[0], { Domain: 'example.com', Peers: [] });
      assert.equal(messages[1]?.DNSConfig?.Domains?.length, 60_000);
      assert.deepEqual(messages[2], { KeepAlive: true });
      await client.close();
    });
  });

  describe('bad input at the upgrade', () => {
    const init = (): string => beginClientHandshake({ machineKey: Curve25519PrivateKey.generate(), controlPublic: server.serverKey.publicBytes, protocolVersion: 145 }).message.toString('base64');
    const cases: Array<{ name: string; request: () => string; want: RegExp }> = [
      { name: 'a missing X-Tailscale-Handshake', request: () => upgradeRequestText(null), want: /^HTTP\/1\.1 400 [^]*missing Tailscale handshake header/ },
      { name: 'handshake header that is not base64', request: () => upgradeRequestText('%%%not base64%%%'), want: /^HTTP\/1\.1 400 [^]*invalid tailscale handshake header/ },
      { name: 'unpadded base64', request: () => upgradeRequestText(init().replace(/=+$/, '')), want: /^HTTP\/1\.1 400 [^]*invalid tailscale handshake header/ },
      { name: 'an unknown Upgrade protocol', request: () => upgradeRequestText(init(), {}, 'h2c'), want: /^HTTP\/1\.1 400 [^]*unknown next protocol/ },
      {
        name: 'a /ts2021 request without Upgrade',
        request: () => 'POST /ts2021 HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n',
        want: /^HTTP\/1\.1 400 [^]*missing next protocol/,
      },
      {
        name: 'a PUT upgrade',
        request: () => upgradeRequestText(init()).replace(/^POST/, 'PUT'),
        want: /^HTTP\/1\.1 405 /,
      },
    ];
    for (const c of cases) {
      it(`answers ${c.name} with a plain HTTP error and closes`, async () => {
        const answer = (await rawExchange(server.port, c.request())).toString('latin1');
        assert.match(answer, c.want);
      });
    }

    const framing: Array<{ name: string; initiation: () => Buffer; hint: string | null }> = [
      { name: 'a truncated (100-byte) initiation', initiation: () => Buffer.from(init(), 'base64').subarray(0, 100), hint: 'wrong handshake initiation size' },
      { name: 'garbage of 7 bytes', initiation: () => Buffer.from('garbage'), hint: 'wrong handshake initiation size' },
      {
        name: 'an initiation of type 2',
        initiation: () => {
          const bytes = Buffer.from(init(), 'base64');
          bytes[2] = 2;
          return bytes;
        },
        hint: 'unexpected handshake message type',
      },
      { name: 'random 101 bytes with a valid header', initiation: () => Buffer.concat([Buffer.from([0, 145, 1, 0, 96]), randomBytes(96)]), hint: null },
    ];
    for (const c of framing) {
      it(`switches protocols, then refuses ${c.name} ${c.hint === null ? 'by closing' : `with "${c.hint}"`}`, async () => {
        const answer = await rawExchange(server.port, upgradeRequestText(c.initiation().toString('base64')));
        const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n\r\n';
        assert.equal(answer.subarray(0, head.length).toString('latin1'), head);
        const tail = answer.subarray(head.length);
        if (c.hint === null) assert.equal(tail.length, 0);
        else assert.deepEqual(tail, Buffer.concat([Buffer.from([3, 0, c.hint.length]), Buffer.from(c.hint)]));
      });
    }

    it('closes on a client that dialled with the wrong server key', async () => {
      await assert.rejects(
        ControlClient.connect({ serverUrl: server.url, serverKey: Curve25519PrivateKey.generate().publicKey('machine') }),
        (err: unknown) => err instanceof Error && /closed while reading the handshake response/.test(err.message),
      );
    });
  });

  describe('faults after the handshake', () => {
    const faults: Array<{ name: string; wire: (session: Awaited<ReturnType<typeof rawNoiseDial>>['session']) => Buffer; code: string }> = [
      { name: 'a garbage record', wire: () => Buffer.from('GET / HTTP/1.1\r\n\r\n'), code: 'HW_NOISE_BAD_MESSAGE_TYPE' },
      { name: 'an oversized record', wire: () => Buffer.from([4, 0x10, 0x00, ...randomBytes(64)]), code: 'HW_NOISE_RECORD_TOO_LARGE' },
      {
        name: 'a replayed record',
        wire: (session) => {
          const record = encodeRecords(session.send, [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')]);
          return Buffer.concat([record, record]);
        },
        code: 'HW_NOISE_DECRYPT_FAILED',
      },
      {
        name: 'a tampered record',
        wire: (session) => {
          const record = encodeRecords(session.send, [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')]);
          record[10] = (record[10] ?? 0) ^ 0x80;
          return record;
        },
        code: 'HW_NOISE_DECRYPT_FAILED',
      },
    ];
    for (const fault of faults) {
      it(`drops the connection on ${fault.name}, counts it, and keeps serving others`, async () => {
        const bystander = await ControlClient.connect({ serverUrl: server.url });
        const before = server.transport.stats().failed[fault.code] ?? 0;
        const dial = await rawNoiseDial(server.port, server.serverKey.publicBytes);
        dial.socket.resume();
        const closed = once(dial.socket, 'close');
        dial.socket.write(fault.wire(dial.session));
        await closed;
        await waitFor(() => (server.transport.stats().failed[fault.code] ?? 0) === before + 1, `${fault.code} counted`);
        assert.equal((await bystander.postJson('/test/echo', {})).status, 200);
        await bystander.close();
        await expectNoLeaks(server.transport);
      });
    }

    it('cleans up a long poll when the client disconnects mid-stream', async () => {
      const client = await ControlClient.connect({ serverUrl: server.url });
      const closedBefore = seen.streamsClosed;
      const stream = client.session.request({ ':method': 'GET', ':path': '/test/tick' });
      stream.on('error', () => {});
      await once(stream, 'data');
      assert.equal(server.transport.stats().streamsOpen, 1);
      client.noise.transport.destroy();
      await expectNoLeaks(server.transport);
      await waitFor(() => seen.streamsClosed === closedBefore + 1, 'the handler saw its response close');
    });

    it('drops a TCP connection that never sends a request after the deadline', async () => {
      const server = await startTestControlServer({ handler: testHandler, limits: { handshakeTimeoutMs: 200 } });
      try {
        const socket = netConnect(server.port, '127.0.0.1');
        socket.on('error', () => {});
        await once(socket, 'close');
        assert.equal(server.transport.stats().refused['HW_CONTROL_HANDSHAKE_TIMEOUT'], 1);
        assert.equal(server.transport.stats().silentSockets, 0);
      } finally {
        await server.close();
      }
    });

    it('leaves no listener of its own on a socket that has spoken (a map poll holds it for hours)', async () => {
      const server = await startTestControlServer({ handler: testHandler });
      try {
        // Registered after attach(): runs right after trackConnection armed the deadline.
        const tracked = new Promise<{ socket: Socket; closeListeners: number }>((resolve) =>
          server.server.once('connection', (socket: Socket) => resolve({ socket, closeListeners: socket.listenerCount('close') })),
        );
        const client = netConnect(server.port, '127.0.0.1');
        client.on('error', () => {});
        const { socket, closeListeners } = await tracked;
        assert.equal(server.transport.stats().silentSockets, 1);
        client.write('GET /key?v=145 HTTP/1.1\r\nHost: x\r\n\r\n');
        await once(client, 'data');
        assert.equal(server.transport.stats().silentSockets, 0);
        assert.equal(socket.listenerCount('close'), closeListeners - 1);
        client.destroy();
      } finally {
        await server.close();
      }
    });

    // What failed "binds every request" under load (code 2, with or without the DATA splice):
    // the deadline is wall time in the process that also runs the client.
    it('expires a short preface deadline on a following client whose process stalls past it', async () => {
      const server = await startTestControlServer({ handler: testHandler, limits: { handshakeTimeoutMs: 200 } });
      try {
        const client = await ControlClient.connect({ serverUrl: server.url, serverKey: server.serverKey.publicKey('machine') });
        const stallUntil = Date.now() + 300;
        while (Date.now() < stallUntil);
        await assert.rejects(client.postJson('/test/echo', {}), /stream closed before a response \(code 2\)/);
        assert.equal(server.transport.stats().failed['HW_CONTROL_HANDSHAKE_TIMEOUT'], 1);
        await client.close();
      } finally {
        await server.close();
      }
    });

    it('drops a Noise connection that never sends the HTTP/2 preface after the deadline', async () => {
      const server = await startTestControlServer({ handler: testHandler, limits: { handshakeTimeoutMs: 200 } });
      try {
        const dial = await dialNoise({ serverUrl: server.url, serverKey: server.serverKey.publicKey('machine') });
        dial.noise.on('error', () => {});
        dial.noise.resume();
        await once(dial.noise, 'close');
        await expectNoLeaks(server.transport);
        assert.equal(server.transport.stats().failed['HW_CONTROL_HANDSHAKE_TIMEOUT'], 1);
      } finally {
        await server.close();
      }
    });
  });

  describe('WebSocket variant', () => {
    async function wsDial(query: string, protocols: string[]): Promise<{ ws: WebSocket; status: number | null }> {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ts2021${query}`, protocols);
      return new Promise((resolve) => {
        ws.once('open', () => resolve({ ws, status: 101 }));
        ws.once('unexpected-response', (_req, res) => {
          resolve({ ws, status: res.statusCode ?? null });
          res.resume();
          ws.terminate();
        });
        ws.once('error', () => {});
      });
    }

    it('runs the handshake from the query parameter, sends no early payload, and serves HTTP/2', async () => {
      const machineKey = Curve25519PrivateKey.generate();
      const initiation = beginClientHandshake({ machineKey, controlPublic: server.serverKey.publicBytes, protocolVersion: 145 });
      // The stream must exist before 'open': the response can arrive in the same read.
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ts2021?X-Tailscale-Handshake=${encodeURIComponent(initiation.message.toString('base64'))}`, [
        'tailscale-control-protocol',
      ]);
      const stream = createWebSocketStream(ws);
      let buffered = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        buffered = Buffer.concat([buffered, chunk]);
      };
      stream.on('data', onData);
      await once(ws, 'open');
      assert.equal(ws.protocol, 'tailscale-control-protocol');
      await waitFor(() => buffered.length >= 51, 'the handshake response');
      stream.off('data', onData);
      stream.pause();
      const noise = new NoiseConnection(stream, initiation.finish(buffered.subarray(0, 51)), { initialData: buffered.subarray(51) });
      const first = await new Promise<Buffer>((resolve) => noise.once('data', resolve));
      noise.pause();
      // No early payload: the first plaintext is the server's SETTINGS frame header.
      assert.notDeepEqual([...first.subarray(0, 3)], [0xff, 0xff, 0xff]);
      assert.equal(first[3], 0x04);
      noise.unshift(first);
      const session: ClientHttp2Session = http2Connect('https://test', { createConnection: () => noise });
      session.on('error', () => {});
      const req = session.request({ ':method': 'POST', ':path': '/test/echo' });
      req.end('{}');
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      await once(req, 'end');
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      assert.equal(body['via'], 'websocket');
      assert.equal(body['machineKey'], machineKey.publicKey('machine'));
      assert.equal(body['challenge'], null);
      session.destroy();
      await expectNoLeaks(server.transport);
    });

    it('answers a truncated initiation over WebSocket with an error frame, then closes', async () => {
      const truncated = beginClientHandshake({ machineKey: Curve25519PrivateKey.generate(), controlPublic: server.serverKey.publicBytes, protocolVersion: 145 }).message.subarray(0, 100);
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ts2021?X-Tailscale-Handshake=${encodeURIComponent(truncated.toString('base64'))}`, ['tailscale-control-protocol']);
      const messages: Buffer[] = [];
      ws.on('message', (data: Buffer) => messages.push(data));
      ws.on('error', () => {});
      const [code] = (await once(ws, 'close')) as [number];
      assert.equal(code, 1008);
      assert.deepEqual(Buffer.concat(messages), Buffer.concat([Buffer.from([3, 0, 31]), Buffer.from('wrong handshake initiation size')]));
      await expectNoLeaks(server.transport);
    });

    it('refuses a WebSocket without the control subprotocol or without the handshake parameter', async () => {
      const initB64 = encodeURIComponent(beginClientHandshake({ machineKey: Curve25519PrivateKey.generate(), controlPublic: server.serverKey.publicBytes, protocolVersion: 145 }).message.toString('base64'));
      assert.equal((await wsDial(`?X-Tailscale-Handshake=${initB64}`, ['chat'])).status, 400);
      assert.equal((await wsDial('', ['tailscale-control-protocol'])).status, 400);
      assert.equal((await wsDial('?X-Tailscale-Handshake=%25%25', ['tailscale-control-protocol'])).status, 400);
    });
  });
});

describe('control transport under load and shutdown', () => {
  it('completes 1,000 concurrent handshakes while serving another client, and leaks nothing', { timeout: 120_000 }, async () => {
    const server = await startTestControlServer({ handler: testHandler });
    const serverKey = server.serverKey.publicKey('machine');
    const bystander = await ControlClient.connect({ serverUrl: server.url, serverKey });
    const machineKey = Curve25519PrivateKey.generate();
    const storm = Promise.allSettled(Array.from({ length: 1000 }, () => ControlClient.connect({ serverUrl: server.url, serverKey, machineKey, dialTimeoutMs: 60_000 })));
    const bystanderAnswers = await Promise.all(Array.from({ length: 20 }, () => bystander.postJson('/test/echo', {})));
    const results = await storm;
    assert.ok(bystanderAnswers.every((r) => r.status === 200));
    const clients = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    assert.deepEqual(failures, []);
    assert.equal(clients.length, 1000);
    assert.equal(server.transport.stats().connectionsOpen, 1001);
    const sample = await Promise.all(clients.slice(0, 50).map((c) => c.postJson('/test/echo', {})));
    assert.ok(sample.every((r) => r.status === 200));
    await Promise.all(clients.map((c) => c.close()));
    await bystander.close();
    await expectNoLeaks(server.transport);
    await server.close();
  });

  it('refuses connections beyond maxConnections with 503 and accepts again when one closes', async () => {
    const server = await startTestControlServer({ handler: testHandler, limits: { maxConnections: 5 } });
    const serverKey = server.serverKey.publicKey('machine');
    const clients = await Promise.all(Array.from({ length: 5 }, () => ControlClient.connect({ serverUrl: server.url, serverKey })));
    await assert.rejects(
      ControlClient.connect({ serverUrl: server.url, serverKey }),
      (err: unknown) => err instanceof HeadwayError && err.code === 'HW_CLIENT_UPGRADE_FAILED' && /503/.test(err.message),
    );
    await clients[0]?.close();
    await waitFor(() => server.transport.stats().connectionsOpen === 4, 'one connection closed');
    const again = await ControlClient.connect({ serverUrl: server.url, serverKey });
    assert.equal((await again.postJson('/test/echo', {})).status, 200);
    await Promise.all([again, ...clients.slice(1)].map((c) => c.close()));
    await expectNoLeaks(server.transport);
    await server.close();
  });

  for (const how of ['FIN', 'RST'] as const) {
    it(`survives clients vanishing mid-poll (${how}) right before close(), leaving nothing open`, async () => {
      const server = await startTestControlServer({ handler: testHandler });
      const clients = await Promise.all(Array.from({ length: 50 }, () => ControlClient.connect({ serverUrl: server.url })));
      for (const client of clients) {
        const poll = client.session.request({ ':method': 'GET', ':path': '/test/tick' });
        poll.on('error', () => {});
        await once(poll, 'data');
      }
      for (const client of clients) {
        const socket = client.noise.transport as Socket;
        if (how === 'RST') socket.resetAndDestroy();
        else socket.end();
      }
      // Let the server see some of the closes, not all, before shutting down.
      await new Promise((resolve) => setImmediate(resolve));
      await server.close();
      const stats = server.transport.stats();
      assert.deepEqual({ connections: stats.connectionsOpen, sessions: stats.sessionsOpen, streams: stats.streamsOpen }, { connections: 0, sessions: 0, streams: 0 });
      await Promise.all(clients.map((c) => c.close()));
    });
  }

  it('close() waits for the session of a connection that closed just before it', async () => {
    const server = await startTestControlServer({ handler: testHandler });
    const client = await ControlClient.connect({ serverUrl: server.url });
    const poll = client.session.request({ ':method': 'GET', ':path': '/test/tick' });
    poll.on('error', () => {});
    await once(poll, 'data');
    (client.noise.transport as Socket).resetAndDestroy();
    // The first turn of the loop in which the connection is gone: its session is still closing.
    while (server.transport.stats().connectionsOpen > 0) await new Promise((resolve) => setImmediate(resolve));
    await server.close();
    const stats = server.transport.stats();
    assert.deepEqual({ sessions: stats.sessionsOpen, streams: stats.streamsOpen }, { sessions: 0, streams: 0 });
    await client.close();
  });

  it('close() ends every session, including open long polls', async () => {
    const server = await startTestControlServer({ handler: testHandler });
    const clients = await Promise.all(Array.from({ length: 3 }, () => ControlClient.connect({ serverUrl: server.url })));
    for (const client of clients) {
      const poll = client.session.request({ ':method': 'GET', ':path': '/test/tick' });
      poll.on('error', () => {});
      await once(poll, 'data');
    }
    assert.equal(server.transport.stats().streamsOpen, 3);
    await server.close();
    await Promise.all(clients.map((c) => c.closed));
    const stats = server.transport.stats();
    assert.equal(stats.connectionsOpen, 0);
    assert.equal(stats.sessionsOpen, 0);
    assert.equal(stats.streamsOpen, 0);
  });
});
