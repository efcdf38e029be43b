// Test helpers: a real ServerState on a real store behind the API handler, served over TCP
// (port 0) and over a unix socket, as the server will mount it. Tests only; production code
// never imports this file.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { configFromObject, type Config } from '../config/index.js';
import { createLogger } from '../log/index.js';
import { Curve25519PrivateKey } from '../key/index.js';
import type { Node, UserId } from '../model/index.js';
import { ServerState, type Actor, type PendingRegistration, type TailnetState } from '../state/index.js';
import { createApiHandler, type ApiHandler, type ApiTransport } from './handler.js';

export const TEST_ADMIN: Actor = { name: 'test-setup' };

export interface TestApiOptions {
  /** Extra YAML-spelled config keys (e.g. `{ policy: { mode: 'file', path } }`). */
  config?: Record<string, unknown>;
  /** The API's clock; defaults to Date.now. */
  now?: () => number;
  /** Policy text per tailnet in file mode (what the server would read from policy.path). */
  policyText?: string | null;
  bodyTimeoutMs?: number;
}

export interface TestResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface TestRequest {
  transport?: ApiTransport;
  apiKey?: string;
  headers?: Record<string, string>;
  /** A JSON value, sent with Content-Type application/json. */
  body?: unknown;
  /** A raw body, sent as is (with the headers given). */
  rawBody?: string | Buffer;
}

export interface TestApi {
  readonly state: ServerState;
  readonly config: Config;
  readonly handler: ApiHandler;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly socketPath: string;
  /** A YAML config file naming the socket, for the CLI's --config. */
  readonly configPath: string;
  readonly dir: string;
  /** Every log line written, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  request(method: string, path: string, options?: TestRequest): Promise<TestResponse>;
  /** Creates an API key straight through the state (as the CLI over the socket would). */
  createApiKey(expiresAt?: Date | null): Promise<string>;
  close(): Promise<void>;
}

/** A store to serve (store/testing.ts `openTestStore` gives one); typed through the state, since api/ may not import store/. */
export interface StoreHolder {
  readonly store: ServerState['store'];
}

export async function startTestApi(testStore: StoreHolder, options: TestApiOptions = {}): Promise<TestApi> {
  const dir = await mkdtemp(join(tmpdir(), 'hw-api-'));
  const socketPath = join(dir, 'admin.sock');
  const config = configFromObject({ data_dir: dir, unix_socket: socketPath, ...options.config });
  const state = await ServerState.load(testStore.store, {
    flushIntervalMs: 0,
    ...(config.policy.mode === 'file' ? { policyTextFor: () => options.policyText ?? null } : {}),
  });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const logger = createLogger({ level: 'info', format: 'json' }, sink);
  const handler = createApiHandler({ state, config, logger, now: options.now, validateResponses: true, bodyTimeoutMs: options.bodyTimeoutMs });
  const serve = (transport: ApiTransport): Server =>
    createServer((req, res) => {
      handler.handle(req, res, transport).then((handled) => {
        if (!handled) {
          res.statusCode = 418;
          res.end('not the admin API');
        }
      }, (err: unknown) => {
        res.statusCode = 599;
        res.end(String(err));
      });
    });
  const tcp = serve('tcp');
  const unix = serve('unix');
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => unix.listen(socketPath, resolve));
  const configPath = join(dir, 'headway.yaml');
  await writeFile(configPath, `data_dir: ${JSON.stringify(dir)}\nunix_socket: ${JSON.stringify(socketPath)}\n`);
  const url = `http://127.0.0.1:${(tcp.address() as AddressInfo).port}`;

  return {
    state, config, handler, url, socketPath, configPath, dir, logs,
    request: (method, path, requestOptions = {}) => sendTestRequest({ url, socketPath }, method, path, requestOptions),
    async createApiKey(expiresAt = null) {
      return (await state.createApiKey(expiresAt, TEST_ADMIN)).secret;
    },
    async close() {
      tcp.closeAllConnections();
      unix.closeAllConnections();
      await Promise.all([new Promise((r) => tcp.close(r)), new Promise((r) => unix.close(r))]);
      await state.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function sendTestRequest(
  target: { url: string; socketPath: string },
  method: string,
  path: string,
  options: TestRequest = {},
): Promise<TestResponse> {
  const transport = options.transport ?? 'tcp';
  const headers: Record<string, string> = { ...options.headers };
  let payload: string | Buffer | undefined = options.rawBody;
  if (options.body !== undefined) {
    payload = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  if (options.apiKey !== undefined) headers['authorization'] = `Bearer ${options.apiKey}`;
  if (payload !== undefined && headers['transfer-encoding'] === undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  const where = transport === 'unix' ? { socketPath: target.socketPath } : { host: '127.0.0.1', port: Number(new URL(target.url).port) };
  return new Promise((resolve, reject) => {
    const req = httpRequest({ ...where, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Registers a node straight through the state, as a client registering with a key would. */
export function addTestNode(
  tailnet: TailnetState,
  input: { hostname: string; userId?: UserId | null; tags?: string[]; routes?: string[]; keyExpiry?: Date | null; approved?: boolean },
): Promise<Node> {
  return tailnet.addNode({
    machineKey: Curve25519PrivateKey.generate().publicKey('machine'),
    nodeKey: Curve25519PrivateKey.generate().publicKey('node'),
    hostinfo: { Hostname: input.hostname, OS: 'linux', IPNVersion: '1.78.3', ...(input.routes ? { RoutableIPs: input.routes } : {}) },
    userId: input.userId ?? null,
    tags: input.tags ?? [],
    keyExpiry: input.keyExpiry ?? null,
    ephemeral: false,
    registerMethod: 'authkey',
    ...(input.approved === false ? { approved: false } : {}),
  }, TEST_ADMIN);
}

/** An interactive login waiting for an admin, as the control protocol would open it. */
export function openTestLogin(state: ServerState, hostname: string): Promise<PendingRegistration> {
  return state.pending.create({
    machineKey: Curve25519PrivateKey.generate().publicKey('machine'),
    nodeKey: Curve25519PrivateKey.generate().publicKey('node'),
    oldNodeKey: null,
    discoKey: null,
    hostinfo: { Hostname: hostname },
    ephemeral: false,
    requestedExpiry: null,
  });
}
