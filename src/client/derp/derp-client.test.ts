import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Curve25519PrivateKey } from '../../key/index.js';
import { DerpClient } from './derp-client.js';

describe('DerpClient.connect', () => {
  let server: Server;
  let port: number;
  before(async () => {
    server = createServer((_req, res) => {
      res.writeHead(404);
      res.end('no DERP here');
    });
    server.on('upgrade', (req, socket) => {
      // Claims to switch protocols, then sends something that is not a ServerKey frame.
      if (req.url === '/derp') socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n\x07\x00\x00\x00\x01\x01');
      else socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const privateKey = Curve25519PrivateKey.generate();

  it('fails with HW_CLIENT_DERP_CONNECT when the server does not answer 101', async () => {
    await assert.rejects(DerpClient.connect({ url: `http://127.0.0.1:${port}/not-derp`, privateKey }), {
      code: 'HW_CLIENT_DERP_CONNECT',
      message: /HTTP 404/,
    });
  });

  it('fails with HW_CLIENT_DERP_HANDSHAKE when the first frame is not ServerKey', async () => {
    await assert.rejects(DerpClient.connect({ url: `http://127.0.0.1:${port}`, privateKey }), { code: 'HW_CLIENT_DERP_HANDSHAKE', message: /invalid server greeting/ });
  });

  it('fails with HW_CLIENT_DERP_CONNECT when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(DerpClient.connect({ url: `http://127.0.0.1:${freePort}`, privateKey }), { code: 'HW_CLIENT_DERP_CONNECT', message: /ECONNREFUSED/ });
  });

  it('rejects a URL scheme it does not speak', async () => {
    await assert.rejects(DerpClient.connect({ url: 'ftp://127.0.0.1/derp', privateKey }), { code: 'HW_CLIENT_DERP_CONNECT' });
  });
});
