import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { crc32, parseBindingRequest, parseBindingResponse, parseListenAddr, startStunServer, stunBindingRequest, stunBindingResponse } from './stun.js';
import { waitUntil } from './testing.js';

function udpClient(type: 'udp4' | 'udp6', host: string): Promise<{ socket: Socket; port: number; replies: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(type);
    const replies: Buffer[] = [];
    socket.on('message', (m) => replies.push(m));
    socket.once('error', reject);
    socket.bind(0, host, () => resolve({ socket, port: socket.address().port, replies }));
  });
}

async function canBindIPv6Loopback(): Promise<boolean> {
  try {
    const c = await udpClient('udp6', '::1');
    c.socket.close();
    return true;
  } catch {
    return false;
  }
}

describe('STUN codec', () => {
  it('computes CRC-32 (IEEE) as the FINGERPRINT needs', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });

  it('builds the 40-byte request Tailscale clients send and parses it back', () => {
    const txid = randomBytes(12);
    const request = stunBindingRequest(txid);
    assert.equal(request.length, 40);
    assert.equal(request.toString('hex', 0, 8), '000100142112a442');
    assert.equal(request.toString('hex', 20, 24), '80220008');
    assert.equal(request.toString('latin1', 24, 32), 'tailnode');
    assert.equal(request.toString('hex', 32, 36), '80280004');
    const parsed = parseBindingRequest(request);
    assert.ok(parsed.ok);
    assert.ok(parsed.transactionId.equals(txid));
  });

  it('encodes XOR-MAPPED-ADDRESS for IPv4, IPv4-mapped IPv6 (as IPv4) and IPv6', () => {
    const txid = Buffer.from('0102030405060708090a0b0c', 'hex');
    const v4 = stunBindingResponse(txid, '192.0.2.1', 32853);
    assert.equal(v4.toString('hex'), '0101000c2112a442' + txid.toString('hex') + '002000080001a147e112a643');
    assert.deepEqual(parseBindingResponse(v4), { transactionId: txid, address: '192.0.2.1', port: 32853 });
    const mapped = stunBindingResponse(txid, '::ffff:192.0.2.1', 32853);
    assert.ok(mapped.equals(v4));
    const v6 = stunBindingResponse(txid, '2001:db8::1', 443);
    assert.equal(v6.length, 44);
    assert.equal(v6[25], 0x02);
    assert.deepEqual(parseBindingResponse(v6), { transactionId: txid, address: '2001:db8::1', port: 443 });
  });

  const bad: Array<{ name: string; packet: () => Buffer; reason: string; lenient?: boolean }> = [
    { name: 'too short', packet: () => randomBytes(10), reason: 'not_stun' },
    { name: 'no magic cookie', packet: () => Buffer.concat([Buffer.from('0001000021124a43', 'hex'), randomBytes(12)]), reason: 'not_stun' },
    {
      name: 'a Binding response, not a request',
      packet: () => stunBindingResponse(randomBytes(12), '127.0.0.1', 1),
      reason: 'not_binding_request',
    },
    {
      name: 'an attribute running past the end',
      packet: () => Buffer.concat([Buffer.from('000100082112a442', 'hex'), randomBytes(12), Buffer.from('80220040', 'hex')]),
      reason: 'malformed_attributes',
    },
    {
      name: 'a plain RFC 5389 request without SOFTWARE',
      packet: () => Buffer.concat([Buffer.from('000100002112a442', 'hex'), randomBytes(12)]),
      reason: 'wrong_software',
    },
    {
      name: 'a wrong FINGERPRINT',
      packet: () => {
        const r = stunBindingRequest(randomBytes(12));
        r[39]! ^= 1;
        return r;
      },
      reason: 'bad_fingerprint',
      lenient: true,
    },
  ];
  for (const { name, packet, reason, lenient } of bad) {
    it(`rejects ${name} (${reason})`, () => {
      const result = parseBindingRequest(packet());
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.reason, reason);
      if (lenient === true) assert.equal(parseBindingRequest(packet(), { requireTailscaleSoftware: false }).ok, false);
    });
  }

  it('accepts a plain RFC 5389 request when Tailscale software is not required', () => {
    const plain = Buffer.concat([Buffer.from('000100002112a442', 'hex'), randomBytes(12)]);
    assert.equal(parseBindingRequest(plain, { requireTailscaleSoftware: false }).ok, true);
  });

  const addrs: Array<{ text: string; want: { host: string; port: number } | null }> = [
    { text: '0.0.0.0:3478', want: { host: '0.0.0.0', port: 3478 } },
    { text: ':3478', want: { host: '', port: 3478 } },
    { text: '[::]:3478', want: { host: '::', port: 3478 } },
    { text: '[::1]', want: { host: '::1', port: 3478 } },
    { text: '127.0.0.1:0', want: { host: '127.0.0.1', port: 0 } },
    { text: '::1:3478', want: null },
    { text: '0.0.0.0:99999', want: null },
    { text: 'example.com:3478', want: null },
  ];
  for (const { text, want } of addrs) {
    it(`parses listen address ${JSON.stringify(text)}`, () => {
      if (want === null) assert.throws(() => parseListenAddr(text), { code: 'HW_DERP_BAD_LISTEN_ADDR' });
      else assert.deepEqual(parseListenAddr(text), want);
    });
  }
});

describe('startStunServer', () => {
  it('answers an IPv4 binding request with the sender address, and ignores garbage', async () => {
    const registry = new Registry();
    const server = await startStunServer({ listenAddr: '127.0.0.1:0', metrics: registry });
    const client = await udpClient('udp4', '127.0.0.1');
    try {
      const port = server.address().port;
      client.socket.send(Buffer.from('definitely not stun'), port, '127.0.0.1');
      client.socket.send(Buffer.concat([Buffer.from('000100002112a442', 'hex'), randomBytes(12)]), port, '127.0.0.1');
      const txid = randomBytes(12);
      client.socket.send(stunBindingRequest(txid), port, '127.0.0.1');
      await waitUntil('one reply', () => client.replies.length === 1);
      const reply = parseBindingResponse(client.replies[0]!);
      assert.deepEqual(reply, { transactionId: txid, address: '127.0.0.1', port: client.port });
      assert.equal(server.stats.dropped.not_stun, 1);
      assert.equal(server.stats.dropped.wrong_software, 1);
      await waitUntil('answer counted', () => server.stats.answered === 1);
      assert.match(await registry.metrics(), /headway_derp_stun_requests_total\{disposition="not_stun"\} 1/);
      assert.equal(client.replies.length, 1);
    } finally {
      client.socket.close();
      await server.close();
    }
  });

  it('answers IPv4 clients of a dual-stack socket with family IPv4', async (t) => {
    let server;
    try {
      server = await startStunServer({ listenAddr: ':0' });
    } catch (err) {
      t.skip(`cannot bind a UDP socket on all interfaces here: ${(err as Error).message}`);
      return;
    }
    const client = await udpClient('udp4', '127.0.0.1');
    try {
      const txid = randomBytes(12);
      client.socket.send(stunBindingRequest(txid), server.address().port, '127.0.0.1');
      await waitUntil('one reply', () => client.replies.length === 1);
      assert.equal(client.replies[0]![25], 0x01);
      assert.deepEqual(parseBindingResponse(client.replies[0]!), { transactionId: txid, address: '127.0.0.1', port: client.port });
    } finally {
      client.socket.close();
      await server.close();
    }
  });

  it('answers an IPv6 binding request with the IPv6 sender address', async (t) => {
    if (!(await canBindIPv6Loopback())) {
      t.skip('this machine has no IPv6 loopback (::1)');
      return;
    }
    const server = await startStunServer({ listenAddr: '[::1]:0' });
    const client = await udpClient('udp6', '::1');
    try {
      const txid = randomBytes(12);
      client.socket.send(stunBindingRequest(txid), server.address().port, '::1');
      await waitUntil('one reply', () => client.replies.length === 1);
      assert.deepEqual(parseBindingResponse(client.replies[0]!), { transactionId: txid, address: '::1', port: client.port });
      assert.equal(server.stats.answeredIPv6, 1);
    } finally {
      client.socket.close();
      await server.close();
    }
  });

  it('fails with HW_DERP_STUN_LISTEN when the port is taken', async () => {
    const first = await startStunServer({ listenAddr: '127.0.0.1:0' });
    try {
      await assert.rejects(startStunServer({ listenAddr: `127.0.0.1:${first.address().port}` }), { code: 'HW_DERP_STUN_LISTEN' });
    } finally {
      await first.close();
    }
  });
});
