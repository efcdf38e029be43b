// Fuzz targets that reach a real `headway serve` process over real sockets (issue 17, item 1):
// raw HTTP/1.1 requests and upgrades, /ts2021 with good and bad handshakes followed by garbage
// records, register and map bodies over a real Noise connection, DERP frames after the upgrade,
// STUN datagrams and admin API bodies. The property of every run: the process is alive and
// answers, and no request is answered with a 5xx (a 5xx means an unhandled error).
import fc from 'fast-check';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { beginClientHandshake } from '../../src/noise/index.js';
import { Curve25519PrivateKey, publicKeyBytes } from '../../src/key/index.js';
import { ControlClient, fetchServerKey } from '../../src/client/index.js';
import { buildUpgradeRequest } from '../../src/client/http-upgrade.js';
import { stunBindingRequest, parseBindingResponse } from '../../src/derp/index.js';
import { apiRoutes } from '../../src/api/index.js';
import { parameters, type FuzzBudget } from './parsers.js';
import type { ServerProcess } from '../support/server-process.js';

export interface ServerFuzzContext {
  readonly server: ServerProcess;
  readonly apiKey: string;
}

export interface ServerFuzzTarget {
  readonly name: string;
  readonly testRuns: number;
  run(context: ServerFuzzContext, budget: FuzzBudget): Promise<void>;
}

/** Sends `bytes`, reads whatever comes back until the server closes or `waitMs` passes. */
async function exchange(port: number, bytes: Buffer | readonly Buffer[], waitMs = 300): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host: '127.0.0.1', port });
    const received: Buffer[] = [];
    const done = () => { clearTimeout(timer); socket.destroy(); resolve(Buffer.concat(received)); };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (chunk) => received.push(chunk));
    socket.on('error', done);
    socket.on('close', done);
    socket.on('connect', () => {
      for (const part of Array.isArray(bytes) ? bytes : [bytes]) socket.write(part);
    });
  });
}

function statusOf(response: Buffer): number | null {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(response.subarray(0, 32).toString('latin1'));
  return match ? Number(match[1]) : null;
}

async function mustStayUp(server: ServerProcess, what: string): Promise<void> {
  if (!server.alive()) throw new Error(`the server died after ${what}:\n${server.log().slice(-3000)}`);
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** Generous: the test machine may be shared and loaded; a real hang still fails. */
const REQUEST_TIMEOUT_MS = 20_000;

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
const headerValue = fc.oneof(fc.stringMatching(/^[\x20-\x7e]{0,40}$/), fc.constantFrom('0', '-1', '99999999999', 'chunked', 'upgrade', 'Upgrade, keep-alive', 'tailscale-control-protocol', 'websocket', 'DERP'));

export const SERVER_TARGETS: readonly ServerFuzzTarget[] = [
  {
    name: 'http: raw requests and upgrades',
    testRuns: 60,
    async run({ server }, budget) {
      const port = portOf(server.url);
      const initiation = beginClientHandshake({ machineKey: Curve25519PrivateKey.generate(), controlPublic: Curve25519PrivateKey.generate().publicBytes, protocolVersion: 130 }).message;
      const request = fc.record({
        method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PRI', 'CONNECT', 'OPTIONS'), token),
        path: fc.oneof(fc.constantFrom('/ts2021', '/key?v=130', '/key?v=x', '/derp', '/derp/probe', '/derp/latency-check', '/generate_204', '/bootstrap-dns?q=x', '/api/v1/users', '/api/v1/nodes/1', '/register/abcdefgh12', '/health', '/metrics', '/', '*'), fc.webPath(), fc.stringMatching(/^\/[\x21-\x7e]{0,30}$/)),
        version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9'),
        headers: fc.array(fc.oneof(
          fc.tuple(fc.constantFrom('Upgrade', 'Connection', 'Content-Length', 'Transfer-Encoding', 'Authorization', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol', 'Host', 'Expect'), headerValue),
          fc.tuple(fc.constant('X-Tailscale-Handshake'), fc.oneof(bytes(120).map((b) => b.toString('base64')), fc.constant(initiation.toString('base64')), fc.string({ maxLength: 30 }))),
          fc.tuple(token, headerValue),
        ), { maxLength: 8 }),
        body: bytes(256),
      });
      const raw = fc.oneof(
        { weight: 4, arbitrary: request.map((r) => Buffer.concat([Buffer.from(`${r.method} ${r.path} ${r.version}\r\n${r.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1'), r.body])) },
        { weight: 1, arbitrary: bytes(512) },
      );
      await fc.assert(fc.asyncProperty(raw, async (input) => {
        const response = await exchange(port, input);
        const status = statusOf(response);
        if (status !== null && status >= 500 && status !== 503) {
          throw new Error(`answered ${status}:\n${response.subarray(0, 400).toString('latin1')}`);
        }
        await mustStayUp(server, 'a raw request');
      }), parameters(budget));
    },
  },
  {
    name: 'ts2021: a real handshake, then garbage records',
    testRuns: 40,
    async run({ server }, budget) {
      const port = portOf(server.url);
      const authority = new URL(server.url).host;
      const serverKey = await fetchServerKey(server.url);
      const records = fc.oneof(
        bytes(5000),
        // Plausible record headers (type 4, a length) with random bodies.
        fc.array(fc.tuple(fc.constantFrom(1, 2, 3, 4, 5), fc.integer({ min: 0, max: 70000 }), bytes(200)), { maxLength: 4 }).map((parts) => Buffer.concat(parts.map(([type, length, body]) => {
          const head = Buffer.alloc(3);
          head[0] = type;
          head.writeUInt16BE(Math.min(length, 0xffff), 1);
          return Buffer.concat([head, body]);
        }))),
      );
      await fc.assert(fc.asyncProperty(records, fc.boolean(), async (garbage, mutateInitiation) => {
        const initiation = Buffer.from(beginClientHandshake({ machineKey: Curve25519PrivateKey.generate(), controlPublic: publicKeyBytes(serverKey), protocolVersion: 130 }).message);
        if (mutateInitiation) initiation[20] = (initiation[20]! + 1) & 0xff;
        const response = await exchange(port, [buildUpgradeRequest(authority, initiation.toString('base64')), garbage]);
        const status = statusOf(response);
        if (status !== null && status !== 101 && status >= 500 && status !== 503) throw new Error(`answered ${status}`);
        await mustStayUp(server, 'garbage records');
      }), parameters(budget));
    },
  },
  {
    name: 'control: register and map bodies over Noise',
    testRuns: 60,
    async run({ server }, budget) {
      const serverKey = await fetchServerKey(server.url);
      const client = await ControlClient.connect({ serverUrl: server.url, serverKey });
      try {
        const nodeKey = Curve25519PrivateKey.generate().publicKey('node');
        const field = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(nodeKey, 'nodekey:zz', 'discokey:' + 'ab'.repeat(32), '', 130, -1, true));
        const body = fc.oneof(
          fc.dictionary(fc.constantFrom('Version', 'NodeKey', 'OldNodeKey', 'Auth', 'Expiry', 'Followup', 'Hostinfo', 'DiscoKey', 'Stream', 'OmitPeers', 'ReadOnly', 'Endpoints', 'Compress', 'KeepAlive'), field).map((o) => Buffer.from(JSON.stringify(o))),
          bytes(300),
        );
        await fc.assert(fc.asyncProperty(fc.constantFrom('/machine/register', '/machine/map', '/machine/set-dns', '/machine/update-health', '/machine/nope'), body, async (path, input) => {
          const response = await client.request(path, input, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
          // 501 is deliberate (set-dns: Headway does no ACME DNS challenges).
          if (response.status >= 500 && response.status !== 501) throw new Error(`${path} answered ${response.status}: ${response.body.subarray(0, 300).toString('utf8')}`);
          await mustStayUp(server, `a ${path} body`);
        }), parameters(budget));
      } finally {
        await client.close();
      }
    },
  },
  {
    name: 'derp: frames after the upgrade',
    testRuns: 60,
    async run({ server }, budget) {
      const port = portOf(server.url);
      const upgrade = Buffer.from('GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n', 'latin1');
      const frame = fc.tuple(fc.integer({ min: 0, max: 0x20 }), fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constantFrom(0xffffffff, 1 << 20, 65536 + 100)), bytes(400)).map(([type, length, body]) => {
        const head = Buffer.alloc(5);
        head[0] = type;
        head.writeUInt32BE(length, 1);
        return Buffer.concat([head, body.subarray(0, length)]);
      });
      await fc.assert(fc.asyncProperty(fc.array(frame, { maxLength: 6 }), async (frames) => {
        await exchange(port, [upgrade, ...frames]);
        await mustStayUp(server, 'DERP frames');
      }), parameters(budget));
    },
  },
  {
    name: 'stun: datagrams',
    testRuns: 200,
    async run({ server }, budget) {
      const socket = createSocket('udp4');
      await new Promise<void>((done) => socket.bind(0, '127.0.0.1', done));
      try {
        const valid = stunBindingRequest(Buffer.alloc(12, 9));
        const datagram = fc.oneof(bytes(600), fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, value]) => {
          const out = Buffer.from(valid);
          out[at % out.length] = value;
          return out;
        }));
        await fc.assert(fc.asyncProperty(datagram, async (input) => {
          await new Promise<void>((done) => socket.send(input, server.stunPort, '127.0.0.1', () => done()));
        }), parameters(budget));
        // Still answering: a valid request after the garbage gets its response.
        const id = Buffer.alloc(12, 3);
        const answered = new Promise<boolean>((done) => {
          const timer = setTimeout(() => done(false), 3_000);
          socket.on('message', (message) => {
            const parsed = parseBindingResponse(message);
            if (parsed !== null && parsed.transactionId.equals(id)) { clearTimeout(timer); done(true); }
          });
        });
        socket.send(stunBindingRequest(id), server.stunPort, '127.0.0.1');
        if (!(await answered)) throw new Error('STUN stopped answering after the fuzzed datagrams');
        await mustStayUp(server, 'STUN datagrams');
      } finally {
        socket.close();
      }
    },
  },
  {
    name: 'admin api: request bodies, parameters and queries',
    testRuns: 80,
    async run({ server, apiKey }, budget) {
      const routes = apiRoutes().filter((r) => r.method !== 'GET' || r.path.includes('{'));
      const param = fc.oneof(fc.constantFrom('alice', '1', '0', '-1', '99999999999999999999', 'hwk_x', '%00', '..%2f'), fc.stringMatching(/^[A-Za-z0-9._~%-]{1,20}$/));
      const body = fc.oneof(
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        fc.dictionary(fc.constantFrom('name', 'email', 'user', 'tags', 'reusable', 'ephemeral', 'expiration', 'routes', 'policy', 'key', 'src', 'dst', 'proto', 'role', 'displayName', 'at'), fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constantFrom('tag:x', '24h', 'alice', '10.0.0.0/8'))).map((o) => JSON.stringify(o)),
        fc.string({ maxLength: 100 }),
      );
      // Routes by index: a failure then prints a number, not the route object.
      await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: routes.length - 1 }), param, body, fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8', ''), fc.option(fc.stringMatching(/^[a-z]{0,8}$/), { nil: undefined }),
        async (routeIndex, value, text, contentType, tailnet) => {
          const route = routes[routeIndex]!;
          const path = route.path.replace(/\{[^}]+\}/g, encodeURIComponent(value));
          const url = `${server.url}/api/v1${path}${tailnet === undefined ? '' : `?tailnet=${tailnet}`}`;
          const res = await fetch(url, {
            method: route.method,
            headers: { authorization: `Bearer ${apiKey}`, ...(contentType === '' ? {} : { 'content-type': contentType }) },
            ...(route.method === 'GET' ? {} : { body: text }),
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
          const answer = await res.text();
          if (res.status >= 500) throw new Error(`${route.method} ${path} answered ${res.status}: ${answer.slice(0, 300)}`);
          await mustStayUp(server, 'an admin API request');
        }), parameters(budget));
    },
  },
];
