// Test helpers for our HTTP/2 server connection: a plain TCP server that serves it with a
// handler, and a raw frame-level client that sends exactly the bytes a test chooses and
// collects every frame the server sends. Tests only.
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { CLIENT_PREFACE, FrameReader, FrameType, frameHeader, type FrameHeader } from './frames.js';
import { writeInteger } from './hpack-encoder.js';
import type { H2ProtocolError, H2ServerConnection, ServerConnectionOptions } from './server-connection.js';
import type { ServerStream } from './server-stream.js';
import { serveHttp2OnDuplex } from './wires.js';

export interface PlainH2Server {
  readonly port: number;
  readonly connections: H2ServerConnection[];
  /** Protocol errors and listener errors the connections reported. */
  readonly errors: Array<H2ProtocolError | Error>;
  streamsOpen: number;
  close(): Promise<void>;
}

export async function startPlainH2Server(
  onRequest: (stream: ServerStream) => void,
  options: Partial<Omit<ServerConnectionOptions, 'onRequest'>> = {},
): Promise<PlainH2Server> {
  const sockets = new Set<Socket>();
  const state: PlainH2Server = {
    port: 0,
    connections: [],
    errors: [],
    streamsOpen: 0,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    state.connections.push(
      serveHttp2OnDuplex(socket, {
        maxConcurrentStreams: 100,
        maxRequestBodyBytes: 1 << 20,
        closeGraceMs: 200,
        ...options,
        onRequest,
        onStreamCount: (delta) => {
          state.streamsOpen += delta;
        },
        onError: (err) => state.errors.push(err),
      }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(state, { port: (server.address() as AddressInfo).port });
}

export interface ReceivedFrame extends FrameHeader {
  readonly payload: Buffer;
}

/** A client that speaks raw frames. */
export class RawH2Client {
  readonly socket: Socket;
  readonly frames: ReceivedFrame[] = [];
  #closed = false;
  readonly #waiters = new Set<() => void>();

  private constructor(socket: Socket) {
    this.socket = socket;
    const reader = new FrameReader(1 << 24);
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk, (header, payload) => {
        this.frames.push({ ...header, payload: Buffer.from(payload) });
        return true;
      });
      this.#wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  static async connect(port: number, options: { preface?: boolean } = {}): Promise<RawH2Client> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.setNoDelay(true);
    const client = new RawH2Client(socket);
    if (options.preface !== false) client.send(CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0));
    return client;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(...parts: Buffer[]): void {
    this.socket.write(Buffer.concat(parts));
  }

  /** Waits for a frame matching `match` (received earlier or later); fails after `timeoutMs`. */
  async waitFor(what: string, match: (f: ReceivedFrame) => boolean, timeoutMs = 5000): Promise<ReceivedFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (this.#closed) throw new Error(`connection closed before ${what}; frames: ${this.describe()}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; frames: ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      if (Date.now() > deadline) throw new Error(`connection still open; frames: ${this.describe()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Bytes of DATA received on `streamId`. */
  dataOf(streamId: number): Buffer {
    return Buffer.concat(this.frames.filter((f) => f.type === FrameType.DATA && f.streamId === streamId).map((f) => f.payload));
  }

  describe(): string {
    return this.frames.map((f) => `${f.type}/${f.flags}/${f.streamId}/${f.length}`).join(' ');
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([frameHeader(payload.length, type, flags, streamId), payload]);
}

/** A request header block of literals without indexing, raw strings (no table, no Huffman). */
export function literalBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    out.push(0x00);
    for (const text of [name, value]) {
      const bytes = Buffer.from(text, 'latin1');
      writeInteger(out, 0x00, 7, bytes.length);
      for (const byte of bytes) out.push(byte);
    }
  }
  return Buffer.from(out);
}

export function getRequest(path: string, extra: ReadonlyArray<readonly [string, string]> = []): Buffer {
  return literalBlock([[':method', 'GET'], [':scheme', 'https'], [':authority', 'test'], [':path', path], ...extra]);
}

export function u32(...values: number[]): Buffer {
  const out = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => out.writeUInt32BE(v >>> 0, 4 * i));
  return out;
}

export function setting(id: number, value: number): Buffer {
  const out = Buffer.alloc(6);
  out.writeUInt16BE(id, 0);
  out.writeUInt32BE(value, 2);
  return out;
}
