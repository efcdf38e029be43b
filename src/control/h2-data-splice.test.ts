// The DATA splice over real sockets, with our real protocol client: every byte of a spliced
// stream arrives in order whatever the client's windows, node:http2's own responses on the same
// connection still flow (and never overrun the real connection window), cancels and server-side
// ends behave, and a window update past 2^31-1 closes the stream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { ClientHttp2Stream } from 'node:http2';
import { ControlClient } from '../client/index.js';
import { pathOf, type NoiseRequestHandler } from './index.js';
import type { H2DataSplice, SplicedStream } from './h2-data-splice.js';
import { publicKeyBytes } from '../key/index.js';
import { expectNoLeaks, noiseAfterEarlyPayload, rawNoiseDial, startTestControlServer, waitFor, type TestControlServer } from './testing.js';

/** Message `i` of a stream: a 4-byte index and then a deterministic body of varying size. */
function message(i: number): Buffer {
  const size = [1, 700, 16_384, 16_385, 40_000, 3, 5_000][i % 7]!;
  const out = Buffer.alloc(4 + size);
  out.writeUInt32BE(i);
  for (let b = 0; b < size; b++) out[4 + b] = (i * 31 + b) & 0xff;
  return out;
}

const MESSAGES = 120;
function messages(count: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => message(i)));
}
const expected = messages(MESSAGES);
const BIG_BODY = Buffer.alloc(200_000, 7);

const seen = { splices: new Set<H2DataSplice>(), closedStreams: 0, endsAfterQueue: 0 };

/** Writes MESSAGES messages with back-pressure as MapSession does, then ends the stream. */
async function writeAll(stream: SplicedStream, count: number, closed: () => boolean): Promise<void> {
  for (let i = 0; i < count && !closed(); i++) {
    if (!stream.write(message(i))) await new Promise<void>((resolve) => stream.onceDrain(resolve));
  }
}

const handler: NoiseRequestHandler = async (req, res, ctx) => {
  const path = pathOf(req);
  if (path === '/test/big') {
    // node:http2's own DATA on the same connection as a spliced stream.
    res.writeHead(200);
    res.end(BIG_BODY.subarray(0, Number(req.headers['x-bytes'] ?? BIG_BODY.length)));
    return;
  }
  const splice = ctx.splice!;
  seen.splices.add(splice);
  const stream = splice.open(res.stream.id!);
  let closed = false;
  res.once('close', () => {
    closed = true;
    stream.release();
    seen.closedStreams++;
  });
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  if (path === '/test/spliced') {
    await writeAll(stream, Number(req.headers['x-messages'] ?? MESSAGES), () => closed);
    stream.end(() => res.end());
  } else if (path === '/test/end-queued') {
    // Everything is queued before the window allows it out; the end must wait for the queue.
    for (let i = 0; i < MESSAGES; i++) stream.write(message(i));
    stream.end(() => {
      seen.endsAfterQueue += stream.queuedBytes === 0 ? 1 : 0;
      res.end();
    });
  } else if (path === '/test/forever') {
    for (let i = 0; !closed; i++) {
      if (!stream.write(message(i))) await new Promise<void>((resolve) => stream.onceDrain(resolve));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
};

function readAll(stream: ClientHttp2Stream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

function digest(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('HTTP/2 DATA splice', () => {
  let server: TestControlServer;
  before(async () => {
    server = await startTestControlServer({ handler, limits: { spliceMapFrames: true } });
  });
  after(async () => {
    await server.close();
  });

  const windows = [
    { name: "tailscaled's windows (4 MiB stream, 1 GiB connection)", http2Windows: undefined, count: MESSAGES, bigBytes: BIG_BODY.length },
    { name: 'a 700-byte stream window and the default 65,535-byte connection window', http2Windows: { stream: 700, connection: null }, count: MESSAGES, bigBytes: BIG_BODY.length },
    // One byte per DATA frame and per round trip (node:http2's answers too): short bodies.
    { name: 'a 1-byte stream window', http2Windows: { stream: 1, connection: null }, count: 2, bigBytes: 300 },
  ];
  for (const { name, http2Windows, count, bigBytes } of windows) {
    it(`delivers every byte in order with ${name}, beside node:http2's own responses`, async () => {
      const client = await ControlClient.connect({ serverUrl: server.url, serverKey: server.transport.publicKey, http2Windows });
      try {
        const request = client.session.request({ ':method': 'POST', ':path': '/test/spliced', 'x-messages': String(count) });
        request.end();
        const body = readAll(request);
        // While the spliced stream takes the connection window, node:http2 answers too.
        const headers = { 'x-bytes': String(bigBytes) };
        const big = await Promise.all([client.request('/test/big', '', { headers }), client.request('/test/big', '', { headers })]);
        for (const answer of big) assert.equal(digest(answer.body), digest(BIG_BODY.subarray(0, bigBytes)));
        const got = await body;
        const want = messages(count);
        assert.equal(got.length, want.length);
        assert.equal(digest(got), digest(want));
        // The connection still works afterwards.
        assert.equal((await client.request('/test/big', '', { headers })).body.length, bigBytes);
      } finally {
        await client.close();
      }
      const stats = [...seen.splices].map((s) => s.stats());
      assert.ok(stats.some((s) => s.dataFrames > 0), 'the splice wrote the DATA frames');
    });
  }

  it('ends a stream only after everything queued was sent', async () => {
    const before = seen.endsAfterQueue;
    const client = await ControlClient.connect({ serverUrl: server.url, serverKey: server.transport.publicKey, http2Windows: { stream: 2_000, connection: null } });
    try {
      const request = client.session.request({ ':method': 'POST', ':path': '/test/end-queued' });
      request.end();
      const got = await readAll(request);
      assert.equal(digest(got), digest(expected));
      assert.equal(seen.endsAfterQueue, before + 1);
    } finally {
      await client.close();
    }
  });

  it('stops writing when the client cancels, and the connection carries on', async () => {
    const before = seen.closedStreams;
    const client = await ControlClient.connect({ serverUrl: server.url, serverKey: server.transport.publicKey, http2Windows: { stream: 5_000, connection: null } });
    try {
      const request = client.session.request({ ':method': 'POST', ':path': '/test/forever' });
      request.end();
      let received = 0;
      request.on('data', (chunk: Buffer) => (received += chunk.length));
      await waitFor(() => received > 100_000, 'data on the endless stream');
      request.close();
      await once(request, 'close');
      await waitFor(() => seen.closedStreams > before, 'the server to see the cancel');
      const answer = await client.request('/test/big', '');
      assert.equal(answer.body.length, BIG_BODY.length);
    } finally {
      await client.close();
    }
  });

  it('closes the connection on a connection window update past 2^31-1', async () => {
    const before = server.transport.stats().failed['HW_CONTROL_FLOW_CONTROL'] ?? 0;
    const noise = await noiseAfterEarlyPayload(await rawNoiseDial(server.port, publicKeyBytes(server.transport.publicKey)));
    noise.on('error', () => {});
    noise.resume();
    const frame = (type: number, streamId: number, payload: Buffer): Buffer => {
      const header = Buffer.alloc(9);
      header.writeUIntBE(payload.length, 0, 3);
      header[3] = type;
      header.writeUInt32BE(streamId, 5);
      return Buffer.concat([header, payload]);
    };
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(2 ** 31 - 1);
    // 65,535 + (2^31 - 1) exceeds the largest window (RFC 9113 §6.9.1).
    noise.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, Buffer.alloc(0)), frame(8, 0, increment)]));
    await once(noise, 'close');
    await waitFor(() => (server.transport.stats().failed['HW_CONTROL_FLOW_CONTROL'] ?? 0) > before, 'the flow-control failure to be counted');
  });

  it('leaves nothing open', async () => {
    await expectNoLeaks(server.transport);
  });
});
