// The composition root: config -> store -> state -> one pipeline per tailnet, plus the
// listeners (HTTP or HTTPS for clients, the control protocol, DERP and the admin API; a unix
// socket for the local admin API; UDP for STUN) and an orderly shutdown that lets in-flight
// writes finish before the database closes.
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/index.js';
import {
  DEFAULT_CONTROL_LIMITS, createControlTransport, createMachineHandler,
  type ControlBackend, type ControlTransport, type ControlTransportLimits, type TailnetServices,
} from '../control/index.js';
import {
  DerpMapSource, DerpServer, createDerpHttpHandler, derpMapHostNames, embeddedDerpRegion, selfSignedCertificate, startStunServer,
  type DerpHttpHandler, type StunServer,
} from '../derp/index.js';
import { DnsConfigSource, serverDnsBase } from '../dns/index.js';
import { createScimHandler } from '../scim/index.js';
import { createIdentityHttpHandler, ProviderClient, SignInService, type BrowserSignInHook, type IdentityHttpHandler } from '../identity/index.js';
import { createLogger, createMetricsRegistry, type Logger, type Registry } from '../log/index.js';
import type { DerpSource } from '../mapper/index.js';
import { DerpMesh, HaInstance, SharedSignInLedger, loadOrCreateSharedKey, meshKey } from '../ha/index.js';
import type { NodeId, TailnetId, UserId } from '../model/index.js';
import { compilePolicyText } from '../policy/index.js';
import { ServerState, type TailnetState } from '../state/index.js';
import { loadOrCreatePrivateKey, openStore, type Store } from '../store/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { plainAndTlsListener, type PlainAndTlsListener } from './plain-and-tls-listener.js';
import { createConsoleHandler } from '../console/index.js';
import { WebSessions, createBrowserSignInHook } from '../web-session/index.js';
import { PolicyFileWatcher } from './policy-file.js';
import { renderRegisterPage } from './register-page.js';
import { ServerErrors } from './errors.js';
import { TailnetPipeline } from './tailnet-pipeline.js';
import { WebhookDispatcher, type WebhookDispatcherOptions } from '../webhooks/index.js';
import { registerEngineMetrics } from './engine-metrics.js';
import { ConnectionGate, type ConnectionGateStats } from './connection-gate.js';
import { KeyedRateLimiter } from '../util/rate-limiter.js';

/** The oldest TLS version the HTTPS listener accepts. */
export const MIN_TLS_VERSION = 'TLSv1.2';

/**
 * Headers on every page a browser may open (the login page, the root, 404s): no framing, no
 * scripts or outside resources, no MIME sniffing, no referrer leaking a registration id.
 */
export const HTML_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
});

export interface StartOptions {
  logger?: Logger;
  /** How long a node stays online after its map stream ends; overrides node.offline_grace (tests). */
  offlineGraceMs?: number;
  /** Batch interval of live node fields. Default 5 s. */
  flushIntervalMs?: number;
  /** How long online/offline-only changes may wait to be sent. Default 1 s. */
  presenceWindowMs?: number;
  /** Refuse store misuse inside transactions (a development aid with a runtime cost; tests). */
  detectStoreMisuse?: boolean;
  /** Control transport limits; tests shorten the silent-connection deadline (handshakeTimeoutMs). */
  controlLimits?: Partial<ControlTransportLimits>;
  /** DERP keep-alive interval. Default 60 s (Tailscale's derper); tests shorten it. */
  derpKeepAliveMs?: number;
  /**
   * Gives a person who signed in through the provider for the web console a browser session
   * (src/web-session). Default: a console session; tests pass their own.
   */
  onBrowserSignIn?: BrowserSignInHook;
  /** Webhook delivery timing (tests shorten the poll interval and retry backoff). */
  webhooks?: Omit<WebhookDispatcherOptions, 'logger' | 'serverUrl'>;
  /** The wall clock the tailnets' key-expiry and the mapper read (tests move it). Default Date.now. */
  now?: () => number;
  /** How often a tailnet compares the wall clock with the monotonic one. Default 10 s. */
  clockCheckMs?: number;
}

export interface RunningServer {
  readonly config: Config;
  readonly state: ServerState;
  readonly logger: Logger;
  readonly metrics: Registry;
  /** `http(s)://host:port` actually bound. */
  readonly url: string;
  /** The URL clients are told to use (config.server_url, or `url` when listening on port 0). */
  readonly serverUrl: string;
  /** `http://host:port/metrics` of the separate metrics listener, or null when metrics are off. */
  readonly metricsUrl: string | null;
  readonly socketPath: string;
  readonly control: ControlTransport;
  readonly derp: DerpServer | null;
  readonly stun: StunServer | null;
  readonly derpMap: DerpMapSource;
  readonly dns: DnsConfigSource;
  /** Sign-in through the OpenID Connect provider; null without oidc.issuer. */
  readonly signIn: SignInService | null;
  /** This instance's membership of an HA deployment; null with a single instance. */
  readonly ha: HaInstance | null;
  /** Connections not yet past their first request head, and what the bounds refused. */
  connectionGate(): ConnectionGateStats;
  pipeline(tailnet: TailnetId): TailnetPipeline;
  close(): Promise<void>;
}

/** Mounted by the composition root for the admin API (src/api implements it). */
export interface AdminApiHandler {
  handle(req: IncomingMessage, res: ServerResponse, transport: 'tcp' | 'unix'): Promise<boolean>;
}

export type AdminApiFactory = (deps: {
  state: ServerState; config: Config; logger: Logger; serverUrl: string; derpMap: () => unknown; sessions: WebSessions;
  /** Whether the console can offer sign-in through the identity provider, and its name. */
  oidc: () => { enabled: boolean; provider: string | null };
}) => AdminApiHandler;

export async function startServer(config: Config, options: StartOptions & { api?: AdminApiFactory } = {}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(config.log);
  const metrics = createMetricsRegistry({ defaultMetrics: true });
  const cleanups: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch((err: unknown) => logger.warn({ err }, 'shutdown step failed'));
    cleanups.length = 0;
  };
  try {
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    const haConfig = config.ha;

    // Policy in file mode: the file must be valid at start; later bad edits keep the last good.
    let policyFile: PolicyFileWatcher | null = null;
    if (config.policy.mode === 'file' && config.policy.path !== null) {
      policyFile = await PolicyFileWatcher.open(config.policy.path, (text) => compilePolicyText(text, { file: config.policy.path! }), logger);
      cleanups.push(() => policyFile?.close());
    }
    const store: Store = await openStore(config, {
      logger,
      detectMisuse: options.detectStoreMisuse ?? false,
      changeLog: haConfig === null ? null : { instanceId: haConfig.instanceId },
    });
    cleanups.push(() => store.close());
    // With HA the keys are the deployment's, not this instance's: any instance serves any client.
    const noiseKey = haConfig === null
      ? await loadOrCreatePrivateKey(config.noise.privateKeyPath)
      : await loadOrCreateSharedKey(store, 'noise', haConfig.secret);
    // Joined before the state loads, so the change log is followed from a position it covers.
    const ha = haConfig === null || config.database.type !== 'postgres'
      ? null
      : await HaInstance.join({ store, ha: haConfig, postgres: config.database.postgres, advertiseUrl: haConfig.advertiseUrl ?? '', logger });
    if (ha !== null) cleanups.push(() => ha.close());
    const state = await ServerState.load(store, {
      // Live fields (endpoints) reach the other instances through the log when written: write
      // them often, so an endpoint change crosses instances in about this long.
      flushIntervalMs: options.flushIntervalMs ?? (ha !== null ? 250 : undefined),
      sharedPendingLogins: ha !== null,
      ...(config.policy.mode === 'file' ? { policyTextFor: () => policyFile?.text ?? null } : {}),
    });
    cleanups.push(() => state.close());
    const webhooks = new WebhookDispatcher(state, { logger: logger.child({ part: 'webhooks' }), serverUrl: config.serverUrl, ...options.webhooks });
    await webhooks.start();
    cleanups.push(() => webhooks.close());

    const dns = new DnsConfigSource({
      magicDns: config.dns.magicDns,
      baseDomain: config.dns.baseDomain,
      overrideLocalDns: config.dns.overrideLocalDns,
      globalNameservers: config.dns.nameserversGlobal,
      splitNameservers: config.dns.nameserversSplit,
      searchDomains: config.dns.searchDomains,
      extraRecords: config.dns.extraRecords,
      ...(config.dns.extraRecordsPath !== null ? { extraRecordsPath: config.dns.extraRecordsPath } : {}),
    });
    await dns.start((err) => logger.error({ err }, 'dns extra records not reloaded; keeping the last good ones'));
    cleanups.push(() => dns.stop());

    const silentMs = options.controlLimits?.handshakeTimeoutMs ?? DEFAULT_CONTROL_LIMITS.handshakeTimeoutMs;
    // Listen first (port 0 in tests), so the URLs in AuthURLs and the DERP map are the real ones.
    const httpServer: Server = config.tls === null
      ? createHttpServer({ maxHeaderSize: config.limits.maxHeaderBytes })
      // TLS 1.0 and 1.1 are broken; every Tailscale client speaks 1.2 or 1.3.
      : createHttpsServer({ cert: readFileSync(config.tls.certPath), key: readFileSync(config.tls.keyPath), handshakeTimeout: silentMs, minVersion: MIN_TLS_VERSION, maxHeaderSize: config.limits.maxHeaderBytes });
    // Connections that have not sent a request head yet: bounded per address and in total.
    const gate = new ConnectionGate({
      maxPendingPerAddress: config.limits.maxPendingConnectionsPerAddress,
      maxPendingTotal: config.limits.maxPendingConnections,
      pendingTimeoutMs: config.limits.pendingTimeoutMs,
    });
    httpServer.on('connection', (socket: Socket) => gate.admit(socket));
    httpServer.on('request', (req: IncomingMessage) => gate.active(req.socket));
    httpServer.on('upgrade', (req: IncomingMessage) => gate.active(req.socket));
    cleanups.push(() => gate.close());
    httpServer.requestTimeout = 0;
    httpServer.headersTimeout = 30_000;
    httpServer.keepAliveTimeout = 65_000;
    let ready = false;
    const pendingUntilReady = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
      res.end('starting\n');
    };
    httpServer.on('request', (req, res) => { if (!ready) pendingUntilReady(req, res); });
    // server_url http:// (port 0 in tests is http too) with the embedded relay in the DERP map:
    // clients speak TLS to the DERP node anyway, so the plain port must answer TLS as well.
    const derpNeedsTls = config.tls === null && config.derp.server.enabled && config.derp.server.automaticallyAddEmbeddedDerpRegion
      && (config.listenAddr.port === 0 || new URL(config.serverUrl).protocol === 'http:');
    const plainAndTls: PlainAndTlsListener | null = derpNeedsTls
      ? plainAndTlsListener(httpServer, { ...selfSignedCertificate(new URL(config.serverUrl).hostname.replace(/^\[|\]$/g, '')), silentMs })
      : null;
    // The sniffing listener holds a socket until its first byte: bound it there, or a connection
    // that never sends anything would escape the gate.
    plainAndTls?.server.on('connection', (socket: Socket) => gate.admit(socket));
    await listen(plainAndTls?.server ?? httpServer, config.listenAddr.host, config.listenAddr.port);
    cleanups.push(() => closeServer(httpServer));
    if (plainAndTls !== null) cleanups.push(() => plainAndTls.close());
    const bound = (plainAndTls?.server ?? httpServer).address() as AddressInfo;
    const scheme = config.tls === null ? 'http' : 'https';
    const url = `${scheme}://${formatHost(bound.address)}:${bound.port}`;
    const serverUrl = config.listenAddr.port === 0 ? url : config.serverUrl;
    if (ha !== null && haConfig?.advertiseUrl == null) ha.setAdvertiseUrl(url);

    // DERP and STUN.
    let derp: DerpServer | null = null;
    let stun: StunServer | null = null;
    let derpHttp: DerpHttpHandler | null = null;
    let embeddedRegion: tailcfg.DERPRegion | undefined;
    const derpConfig = config.derp.server;
    if (derpConfig.enabled) {
      const derpKey = haConfig === null
        ? await loadOrCreatePrivateKey(derpConfig.privateKeyPath)
        : await loadOrCreateSharedKey(store, 'derp', haConfig.secret);
      derp = new DerpServer({
        privateKey: derpKey,
        logger,
        metrics,
        ...(options.derpKeepAliveMs !== undefined ? { keepAliveMs: options.derpKeepAliveMs, keepAliveJitterMs: 0 } : {}),
        ...(derpConfig.verifyClients ? { admit: (key) => state.nodeByKey(key) !== undefined } : {}),
        ...(haConfig !== null ? { meshKey: meshKey(haConfig.secret) } : {}),
      });
      const relay = derp;
      cleanups.push(() => relay.close());
      if (ha !== null && haConfig !== null) {
        // Every instance relays for the same region: mesh with the others (docs/ha.md).
        const mesh = new DerpMesh({ store, instanceId: haConfig.instanceId, meshKey: meshKey(haConfig.secret), logger, refreshMs: haConfig.heartbeatIntervalMs });
        relay.setMeshForwarder(mesh.forward);
        mesh.start();
        cleanups.push(() => mesh.close());
      }
      stun = await startStunServer({ listenAddr: `${formatHost(derpConfig.stunListenAddr.host || '0.0.0.0')}:${derpConfig.stunListenAddr.port}`, logger, metrics });
      const stunServer = stun;
      cleanups.push(() => stunServer.close());
      if (derpConfig.automaticallyAddEmbeddedDerpRegion) {
        embeddedRegion = embeddedDerpRegion({
          serverUrl,
          regionId: derpConfig.regionId,
          regionCode: derpConfig.regionCode,
          regionName: derpConfig.regionName,
          stunPort: stun.address().port,
          ...(derpConfig.ipv4 !== null ? { ipv4: derpConfig.ipv4 } : {}),
          ...(derpConfig.ipv6 !== null ? { ipv6: derpConfig.ipv6 } : {}),
        });
        if (embeddedRegion.Nodes.some((node) => node.InsecureForTests === true)) {
          logger.warn(
            { server_url: serverUrl },
            'server_url is http://: the embedded DERP node is marked InsecureForTests and answers TLS with a throwaway self-signed '
              + 'certificate, so clients skip its certificate check. This is for tests and local setups only; in production use an '
              + 'https:// server_url (tls_cert_path/tls_key_path, or a TLS-terminating proxy)',
          );
        }
      }
    }
    const derpMap = await DerpMapSource.start({
      ...(embeddedRegion !== undefined ? { embeddedRegion } : {}),
      paths: config.derp.paths,
      urls: config.derp.urls,
      autoUpdate: config.derp.autoUpdateEnabled,
      updateFrequencyMs: config.derp.updateFrequencyMs,
      logger,
      metrics,
    });
    cleanups.push(() => derpMap.close());
    if (derp !== null) derpHttp = createDerpHttpHandler({ relay: derp, bootstrapDnsNames: () => derpMapHostNames(derpMap.current()) });
    const derpSource = versionedDerpSource(derpMap);

    // One pipeline per tailnet.
    const pipelineOptions = {
      coalesceMs: config.map.coalesceWindowMs,
      keepAliveMs: config.map.keepaliveIntervalMs,
      nodeExpiryMs: config.nodeExpiryMs,
      ephemeralInactivityMs: config.ephemeralNodeInactivityTimeoutMs,
      offlineGraceMs: options.offlineGraceMs ?? config.offlineGraceMs,
      routerFailoverGraceMs: Math.min(options.offlineGraceMs ?? config.offlineGraceMs, config.routerFailoverGraceMs),
      ...(options.presenceWindowMs !== undefined ? { presenceWindowMs: options.presenceWindowMs } : {}),
      ...(options.now !== undefined ? { now: options.now } : {}),
      ...(options.clockCheckMs !== undefined ? { clockCheckMs: options.clockCheckMs } : {}),
      ...(ha !== null ? {
        hooks: {
          sessionOnline: (id: NodeId, capVersion: number) => ha.presence.started(id, capVersion),
          sessionOffline: (id: NodeId) => ha.presence.stopped(id),
          runsJob: (job: 'ephemeral-cleanup') => ha.isLeader(job),
        },
      } : {}),
    };
    const pipelines = new Map<TailnetId, TailnetPipeline>();
    const addPipeline = (tailnet: TailnetState) => {
      pipelines.set(tailnet.id, new TailnetPipeline(tailnet, { dns, dnsBase: serverDnsBase(dns), derp: derpSource, logger }, pipelineOptions));
    };
    for (const tailnet of state.tailnets()) addPipeline(tailnet);
    state.onTailnets(({ kind, tailnet }) => {
      if (kind === 'tailnetAdded') addPipeline(tailnet);
      else {
        pipelines.get(tailnet.id)?.close();
        pipelines.delete(tailnet.id);
      }
    });
    cleanups.push(() => { for (const p of pipelines.values()) p.close(); });
    ha?.attach({ state, holdsSession: (tailnetId, nodeId) => pipelines.get(tailnetId)?.holdsSession(nodeId) ?? false });
    registerEngineMetrics(metrics, () => pipelines.values());
    dns.onChange(() => { for (const p of pipelines.values()) p.router.broadcast('dns', p.hub.connectedNodes()); });
    derpSource.onChange(() => { for (const p of pipelines.values()) p.router.broadcast('derpMap', p.hub.connectedNodes()); });
    if (policyFile !== null) {
      policyFile.onChange((text) => {
        for (const tailnet of state.tailnets()) {
          tailnet.setPolicy(text, { name: 'policy-file' }, { persist: false })
            .catch((err: unknown) => logger.error({ err }, 'applying the reloaded policy failed'));
        }
      });
    }

    const pipeline = (id: TailnetId): TailnetPipeline => {
      const found = pipelines.get(id);
      if (found === undefined) throw new HeadwayError(ServerErrors.NO_PIPELINE, `tailnet ${id} has no pipeline`);
      return found;
    };
    const backend: ControlBackend = {
      state,
      serverUrl,
      logger: logger.child({ part: 'control' }),
      services: (id: TailnetId): TailnetServices => pipeline(id),
      // SSH check mode re-authenticates through the provider (signIn is made further down).
      ...(config.oidc !== null ? { reauthenticate: (tailnetId: TailnetId, userId: UserId) => signIn!.startReauthentication(tailnetId, userId) } : {}),
      registrationLimits: {
        perAddress: new KeyedRateLimiter({ perMinute: config.limits.registrationsPerMinutePerAddress }),
        perKey: new KeyedRateLimiter({ perMinute: config.limits.registrationsPerMinutePerKey }),
      },
    };
    const control = createControlTransport({
      serverKey: noiseKey,
      handler: createMachineHandler(backend),
      logger,
      limits: { maxRequestBodyBytes: config.limits.maxRequestBodyBytes, ...options.controlLimits },
    });
    cleanups.push(() => control.close());
    const sessions = new WebSessions(state);
    const oidcProvider = config.oidc === null ? null : new URL(config.oidc.issuer).host;
    const api = options.api?.({
      state, config, logger: logger.child({ part: 'api' }), serverUrl, derpMap: () => derpMap.current(), sessions,
      oidc: () => ({ enabled: oidcProvider !== null, provider: oidcProvider }),
    }) ?? null;
    const adminConsole = createConsoleHandler({ sessions, serverUrl, logger: logger.child({ part: 'console' }) });

    // Sign-in through the provider. Discovery runs in the background and is retried with
    // backoff: the server serves (pre-auth keys work) while the provider is down.
    let signIn: SignInService | null = null;
    let identityHttp: IdentityHttpHandler | null = null;
    if (config.oidc !== null) {
      const identityLogger = logger.child({ part: 'identity' });
      const provider = new ProviderClient(config.oidc, `${serverUrl.replace(/\/+$/, '')}/oidc/callback`, identityLogger);
      provider.start();
      cleanups.push(() => provider.close());
      signIn = new SignInService({
        state, config: { ...config, oidc: config.oidc }, provider, logger: identityLogger, serverUrl,
        // The console's sessions unless a caller supplies its own hook.
        onBrowserSignIn: options.onBrowserSignIn ?? createBrowserSignInHook(sessions, serverUrl),
        // With HA the provider's callback may reach any instance: sign-ins in flight are shared.
        ...(ha !== null && haConfig !== null ? { ledger: new SharedSignInLedger({ store, secret: haConfig.secret, ha, logger: identityLogger }) } : {}),
      });
      identityHttp = createIdentityHttpHandler({ signIn, serverUrl, logger: identityLogger });
    }
    const scim = config.scim === null ? null : createScimHandler({ state, config: config.scim, serverUrl, logger: logger.child({ part: 'scim' }) });

    // The silent-connection deadline covers only sockets that never send a request: any request
    // or upgrade (DERP, the admin API, long polls, not only /ts2021) disarms it. With our own
    // TLS, requests arrive on the TLS socket that 'secureConnection' hands out, so that is the
    // one to track (the raw TCP socket under it never sees a request); https' handshakeTimeout
    // covers a client that never finishes TLS.
    httpServer.on(config.tls === null ? 'connection' : 'secureConnection', (socket: Socket) => control.trackConnection(socket));
    httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
      control.connectionActive(req.socket);
      if (!ready) return;
      void route(req, res).catch((err: unknown) => {
        logger.error({ err, path: req.url }, 'request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    });
    httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      control.connectionActive(socket);
      if (ready && (control.handleUpgrade(req, socket, head) || derpHttp?.handleUpgrade(req, socket, head))) return;
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      if (control.handleRequest(req, res)) return;
      if (derpHttp?.handleRequest(req, res)) return;
      if (api !== null && (await api.handle(req, res, 'tcp'))) return;
      if (identityHttp !== null && (await identityHttp.handle(req, res))) return;
      if (scim !== null && (await scim.handle(req, res))) return;
      if (await adminConsole.handle(req, res)) return;
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method === 'GET' && path.startsWith('/register/')) {
        const page = await renderRegisterPage(path.slice('/register/'.length), state);
        res.writeHead(page.status, { ...HTML_SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' });
        res.end(page.html);
        return;
      }
      if (req.method === 'GET' && path === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"ok"}');
        return;
      }
      if (req.method === 'GET' && path === '/') {
        res.writeHead(200, { ...HTML_SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
        res.end('Headway, a Tailscale control server. Point a client at it: tailscale up --login-server=' + serverUrl + '\n');
        return;
      }
      res.writeHead(404, { ...HTML_SECURITY_HEADERS, 'content-type': 'text/plain' });
      res.end('not found\n');
    };

    // The admin API on a unix socket: file permissions are its authentication.
    const socketPath = config.unixSocket;
    let unixServer: Server | null = null;
    if (api !== null) {
      await removeStaleSocket(socketPath);
      unixServer = createHttpServer((req, res) => {
        void api.handle(req, res, 'unix').then((handled) => {
          if (!handled) { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('not found\n'); }
        }).catch((err: unknown) => {
          logger.error({ err }, 'admin request failed');
          if (!res.headersSent) res.writeHead(500);
          res.end();
        });
      });
      await listenPrivatePath(unixServer, socketPath);
      await chmod(socketPath, config.unixSocketPermission);
      const unix = unixServer;
      cleanups.push(async () => { await closeServer(unix); await rm(socketPath, { force: true }); });
    }

    // Metrics describe the tailnet (node counts, traffic): never on the public listener.
    let metricsUrl: string | null = null;
    if (config.metricsListenAddr !== null) {
      const metricsServer = createHttpServer((req, res) => {
        if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') { res.writeHead(404); res.end(); return; }
        void metrics.metrics().then((text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        }, (err: unknown) => {
          logger.error({ err }, 'collecting metrics failed');
          res.writeHead(500);
          res.end();
        });
      });
      await listen(metricsServer, config.metricsListenAddr.host, config.metricsListenAddr.port);
      cleanups.push(() => closeServer(metricsServer));
      const metricsBound = metricsServer.address() as AddressInfo;
      metricsUrl = `http://${formatHost(metricsBound.address)}:${metricsBound.port}/metrics`;
    }

    ready = true;
    let nodes = 0;
    for (const t of state.tailnets()) nodes += t.nodeCount;
    logger.info(
      { listen: url, server_url: serverUrl, metrics: metricsUrl, data_dir: config.dataDir, database: config.database.type, tailnets: pipelines.size, nodes },
      `headway serving on ${url} (clients: tailscale up --login-server=${serverUrl}); data in ${config.dataDir}`,
    );

    let closing: Promise<void> | null = null;
    return {
      config, state, logger, metrics, url, serverUrl, metricsUrl, socketPath, control, derp, stun, derpMap, dns, signIn, ha,
      pipeline,
      connectionGate: () => gate.stats(),
      close: () => {
        closing ??= (async () => {
          ready = false;
          logger.info('headway shutting down');
          await cleanup();
          logger.info('headway stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Wraps the DERP map source with a version number the mapper caches by. */
function versionedDerpSource(source: DerpMapSource): DerpSource & { onChange(listener: () => void): void } {
  let version = 1;
  const listeners: Array<() => void> = [];
  source.on('change', () => {
    version++;
    for (const l of listeners) l();
  });
  return {
    current: () => source.current(),
    get version() { return version; },
    onChange: (listener) => { listeners.push(listener); },
  };
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function listen(server: NetServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: host === '' ? undefined : host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Listens on a unix socket that is created owner-only: the later chmod widens it to the
 * configured mode, so no other user can connect in between. The bind happens inside listen(),
 * synchronously, so the narrowed umask covers exactly that call.
 */
function listenPrivatePath(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const previous = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(previous);
    }
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/** A socket file left by a crashed server would make listen fail; a live one must not be stolen. */
async function removeStaleSocket(path: string): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (info === null) return;
  if (!info.isSocket()) throw new HeadwayError(ServerErrors.SOCKET_PATH, `${path}: exists and is not a socket; refusing to replace it`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new HeadwayError(ServerErrors.SOCKET_PATH, `${path}: another Headway server is already running on this data directory`);
  await rm(path, { force: true });
}
