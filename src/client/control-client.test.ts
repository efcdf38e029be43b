// The client against a small independent TS2021 server (testing.ts: Noise core + node:http2,
// no control/ code): what it sends, what it accepts, and what it refuses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Curve25519PrivateKey } from '../key/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { ControlClient, fetchServerKey, parseResponseHead, upgradeHeadProblem, dialNoise } from './index.js';
import { FAKE_CHALLENGE, startFakeControlServer } from './testing.js';

const isCode = (code: string, message?: RegExp) => (err: unknown): boolean =>
  err instanceof HeadwayError && err.code === code && (message === undefined || message.test(err.message));

describe('fetchServerKey', () => {
  it('returns the publicKey of /key?v=<capver>', async () => {
    const server = await startFakeControlServer();
    assert.equal(await fetchServerKey(server.url), server.serverKey.publicKey('machine'));
    await server.close();
  });

  const bad: Array<{ name: string; status?: number; body: string; message: RegExp }> = [
    { name: 'a zero publicKey', body: JSON.stringify({ publicKey: `mkey:${'0'.repeat(64)}` }), message: /too old; no noise key/ },
    { name: 'a non-200 answer', status: 400, body: 'nope', message: /HTTP 400: nope/ },
    { name: 'a body that is not JSON', body: '<html>', message: /not JSON/ },
    { name: 'a nodekey instead of an mkey', body: JSON.stringify({ publicKey: `nodekey:${'1'.repeat(64)}` }), message: /not an mkey/ },
  ];
  for (const c of bad) {
    it(`refuses ${c.name}`, async () => {
      const server = await startFakeControlServer({ keyBody: c.body, ...(c.status === undefined ? {} : { keyStatus: c.status }) });
      await assert.rejects(fetchServerKey(server.url), isCode('HW_CLIENT_KEY_FETCH_FAILED', c.message));
      await server.close();
    });
  }
});

describe('upgrade response checks', () => {
  const head = (text: string) => parseResponseHead(text);
  it('accepts the exact 101 head, and Connection with several tokens', () => {
    assert.equal(upgradeHeadProblem(head('HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade')), null);
    assert.equal(upgradeHeadProblem(head('HTTP/1.1 101 Switching Protocols\r\nupgrade: tailscale-control-protocol\r\nconnection: keep-alive, Upgrade')), null);
  });
  it('refuses another status, a differently cased Upgrade value, or no Connection: upgrade', () => {
    assert.match(upgradeHeadProblem(head('HTTP/1.1 200 OK\r\nContent-Length: 0')) ?? '', /unexpected HTTP response: 200 OK/);
    assert.match(upgradeHeadProblem(head('HTTP/1.1 101 Switching Protocols\r\nUpgrade: Tailscale-Control-Protocol\r\nConnection: upgrade')) ?? '', /unexpected protocol/);
    assert.match(upgradeHeadProblem(head('HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol')) ?? '', /Connection: upgrade/);
  });
  it('refuses something that is not HTTP/1.x', () => {
    assert.throws(() => parseResponseHead('SSH-2.0-OpenSSH_9.6'), /not an HTTP\/1\.x status line/);
  });
});

describe('ControlClient', () => {
  it('sends the upgrade as tailscaled does and speaks HTTP/2 after the early payload', async () => {
    const server = await startFakeControlServer({ handler: (req, res) => res.end(JSON.stringify({ path: req.url, scheme: req.headers[':scheme'] })) });
    const machineKey = Curve25519PrivateKey.generate();
    const client = await ControlClient.connect({ serverUrl: server.url, machineKey, protocolVersion: 109 });
    const [upgrade] = server.upgrades;
    assert.ok(upgrade);
    assert.equal(upgrade.method, 'POST');
    assert.equal(upgrade.url, '/ts2021');
    assert.equal(upgrade.headers['upgrade'], 'tailscale-control-protocol');
    assert.equal(upgrade.headers['connection'], 'upgrade');
    const initiation = Buffer.from(String(upgrade.headers['x-tailscale-handshake']), 'base64');
    assert.equal(initiation.length, 101);
    assert.equal(initiation.readUInt16BE(0), 109);
    assert.equal(server.peers[0], machineKey.publicBytes.toString('hex'));
    assert.deepEqual(client.earlyPayload, { nodeKeyChallenge: FAKE_CHALLENGE });
    const res = await client.postJson('/machine/whatever', {});
    assert.deepEqual(res.json, { path: '/machine/whatever', scheme: 'https' });
    await client.close();
    await server.close();
  });

  for (const mode of ['none', 'three-records'] as const) {
    it(`works with ${mode === 'none' ? 'no early payload' : 'an early payload split over three records'}`, async () => {
      const server = await startFakeControlServer({ earlyPayload: mode });
      const client = await ControlClient.connect({ serverUrl: server.url });
      assert.deepEqual(client.earlyPayload, mode === 'none' ? null : { nodeKeyChallenge: FAKE_CHALLENGE });
      assert.equal((await client.request('/x')).body.toString(), 'ok');
      await client.close();
      await server.close();
    });
  }

  const refusals: Array<{ name: string; behaviour: Parameters<typeof startFakeControlServer>[0]; code: string; message: RegExp }> = [
    {
      name: 'a 101 whose Upgrade differs in case',
      behaviour: { upgradeHead: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: Tailscale-Control-Protocol\r\nConnection: upgrade\r\n\r\n' },
      code: 'HW_CLIENT_UPGRADE_FAILED',
      message: /unexpected protocol/,
    },
    {
      name: 'a 101 without Connection: upgrade',
      behaviour: { upgradeHead: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\n\r\n' },
      code: 'HW_CLIENT_UPGRADE_FAILED',
      message: /Connection: upgrade/,
    },
    {
      name: 'a 503 with a text body',
      behaviour: { upgradeHead: 'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 20\r\nConnection: close\r\n\r\ntoo many connections' },
      code: 'HW_CLIENT_UPGRADE_FAILED',
      message: /503 Service Unavailable: too many connections/,
    },
    { name: 'an error frame', behaviour: { errorFrame: 'client version too old' }, code: 'HW_NOISE_SERVER_REFUSED', message: /"client version too old"/ },
  ];
  for (const c of refusals) {
    it(`refuses ${c.name}`, async () => {
      const server = await startFakeControlServer(c.behaviour);
      await assert.rejects(ControlClient.connect({ serverUrl: server.url, serverKey: server.serverKey.publicKey('machine') }), isCode(c.code, c.message));
      await server.close();
    });
  }

  it('gives up after the dial timeout when the server never answers', async () => {
    const server = await startFakeControlServer({ silent: true });
    await assert.rejects(ControlClient.connect({ serverUrl: server.url, serverKey: server.serverKey.publicKey('machine'), dialTimeoutMs: 200 }), isCode('HW_CLIENT_DIAL_TIMEOUT'));
    await server.close();
  });

  it('refuses a server that speaks something else on the port', async () => {
    const tcp = createServer((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n'));
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const url = `http://127.0.0.1:${(tcp.address() as AddressInfo).port}`;
    await assert.rejects(dialNoise({ serverUrl: url, serverKey: Curve25519PrivateKey.generate().publicKey('machine') }), isCode('HW_CLIENT_UPGRADE_FAILED'));
    tcp.close();
  });

  it('samples map messages: skipped ones are counted, not decoded', async () => {
    const frames = Array.from({ length: 6 }, (_, i) => {
      const json = Buffer.from(JSON.stringify({ Seq: i }));
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32LE(json.length);
      return Buffer.concat([prefix, json]);
    });
    const server = await startFakeControlServer({ handler: (_req, res) => res.end(Buffer.concat(frames)) });
    const client = await ControlClient.connect({ serverUrl: server.url });
    // No Compress:"zstd" in the request: the messages are plain JSON.
    const stream = await client.openMapStream({ Version: 145, Stream: true }, { shouldDecode: (i) => i % 3 === 0 });
    const seqs = [];
    for await (const message of stream) seqs.push((message as { Seq: number }).Seq);
    assert.deepEqual(seqs, [0, 3]);
    assert.deepEqual(stream.stats, { messages: 6, decoded: 2, skipped: 4, payloadBytes: frames.reduce((n, f) => n + f.length - 4, 0) });
    await client.close();
    await server.close();
  });

  it('rejects a map stream that is not 200, with the status and text', async () => {
    const server = await startFakeControlServer({ handler: (_req, res) => res.writeHead(404).end('node not found') });
    const client = await ControlClient.connect({ serverUrl: server.url });
    await assert.rejects(client.openMapStream({ Compress: 'zstd' }), isCode('HW_CLIENT_REQUEST_FAILED', /HTTP 404: node not found/));
    await client.close();
    await server.close();
  });
});
