// The main listener when Headway has no TLS of its own but advertises its embedded DERP relay
// (server_url http://). Tailscale clients speak TLS to every DERP node, even one on a plain
// port; the node is marked InsecureForTests so they skip the certificate check. So this port
// answers both: a connection whose first byte starts a TLS handshake record gets TLS with a
// throwaway certificate, any other is plain HTTP, and both go to the one http.Server.
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';
import type { Server as HttpServer } from 'node:http';

/** ContentType "handshake" of a TLS record: the first byte of every ClientHello. */
const TLS_HANDSHAKE_RECORD = 0x16;

export interface PlainAndTlsListener {
  readonly server: NetServer;
  /**
   * Stops listening and destroys every socket it accepted (the TCP sockets under TLS too), so it
   * resolves even with connections the http.Server, the relay or the control transport still hold.
   */
  close(): Promise<void>;
}

export function plainAndTlsListener(http: HttpServer, options: { cert: string; key: string; silentMs: number }): PlainAndTlsListener {
  const secureContext = createSecureContext({ cert: options.cert, key: options.key });
  const accepted = new Set<Socket>();
  const server = createNetServer((socket) => {
    accepted.add(socket);
    socket.once('close', () => accepted.delete(socket));
    socket.on('error', () => socket.destroy());
    // A socket that never sends a byte never reaches the http.Server and its silent-connection
    // deadline: this is that deadline for it.
    socket.setTimeout(options.silentMs, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE_RECORD) {
        const tls = new TLSSocket(socket, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
        tls.on('error', () => tls.destroy());
        http.emit('connection', tls);
      } else {
        http.emit('connection', socket);
        socket.resume();
      }
    });
  });
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of accepted) socket.destroy();
      }),
  };
}
