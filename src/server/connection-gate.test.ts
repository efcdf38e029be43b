// The connection gate's bookkeeping on real TCP sockets: what it leaves behind once a
// connection has spoken.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ConnectionGate } from './connection-gate.js';

describe('connection gate', () => {
  it('releases an active connection without keeping a listener on its socket', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const [socket] = await accepted;
    try {
      const gate = new ConnectionGate({ maxPendingPerAddress: 4, maxPendingTotal: 4, pendingTimeoutMs: 60_000 });
      const closeListeners = socket.listenerCount('close');
      gate.admit(socket);
      assert.equal(gate.stats().pending, 1);
      gate.active(socket);
      assert.equal(gate.stats().pending, 0);
      assert.equal(gate.stats().pendingAddresses, 0);
      // A map poll keeps its socket for hours: nothing of the gate's may stay on it.
      assert.equal(socket.listenerCount('close'), closeListeners);
    } finally {
      client.destroy();
      socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
