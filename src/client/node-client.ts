// A device as tailscaled behaves towards its control server: it has a machine, node and disco
// key, registers (with a pre-auth key or interactively), holds one streaming map poll whose
// messages it applies to its netmap, and reports endpoints and hostinfo in lite updates.
// Used by the end-to-end tests, the load benchmark and `headway debug`.
import { Curve25519PrivateKey, type DiscoPublicKey, type MachinePublicKey, type NodePublicKey } from '../key/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { CURRENT_CAPVER, ZERO_TIME } from '../tailcfg/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { ControlClient, type DialOptions } from './control-client.js';
import { ClientErrors } from './errors.js';
import type { MapStream } from './map-stream.js';
import { Netmap } from './netmap.js';

export interface NodeClientOptions {
  serverUrl: string;
  hostname: string;
  /** Capability version the device speaks (51 = Tailscale 1.34, 109 = 1.78). */
  capVersion?: number;
  machineKey?: Curve25519PrivateKey;
  nodeKey?: Curve25519PrivateKey;
  /** The server's Noise key, when already known (saves a /key fetch per device). */
  serverKey?: MachinePublicKey;
  hostinfo?: Partial<tailcfg.Hostinfo>;
  /** HTTP/2 receive windows to advertise (ControlClient's DialOptions); tailscaled's by default. */
  http2Windows?: DialOptions['http2Windows'];
}

export class NodeClient {
  readonly serverUrl: string;
  readonly capVersion: number;
  readonly machineKey: Curve25519PrivateKey;
  nodeKey: Curve25519PrivateKey;
  readonly discoKey = Curve25519PrivateKey.generate();
  hostinfo: tailcfg.Hostinfo;
  readonly netmap = new Netmap();
  #control: ControlClient | null = null;
  #serverKey: MachinePublicKey | undefined;
  readonly #http2Windows: DialOptions['http2Windows'];
  #stream: MapStream | null = null;
  #streamAbort: AbortController | null = null;
  #pump: Promise<void> | null = null;
  #waiters = new Set<() => void>();
  /** The last messages received (newest last), for tests that check how a change arrived. */
  readonly received: tailcfg.MapResponse[] = [];
  /** How many messages to keep in `received`. */
  receivedLimit = 256;
  /** Why the map stream ended, if it did. */
  streamError: Error | null = null;
  streamEnded = false;

  constructor(options: NodeClientOptions) {
    this.serverUrl = options.serverUrl;
    this.capVersion = options.capVersion ?? CURRENT_CAPVER;
    this.machineKey = options.machineKey ?? Curve25519PrivateKey.generate();
    this.nodeKey = options.nodeKey ?? Curve25519PrivateKey.generate();
    this.#serverKey = options.serverKey;
    this.#http2Windows = options.http2Windows;
    this.hostinfo = { Hostname: options.hostname, OS: 'linux', IPNVersion: 'headway-test', ...options.hostinfo };
  }

  get nodePublicKey(): NodePublicKey {
    return this.nodeKey.publicKey('node');
  }

  get discoPublicKey(): DiscoPublicKey {
    return this.discoKey.publicKey('disco');
  }

  get machinePublicKey(): MachinePublicKey {
    return this.machineKey.publicKey('machine');
  }

  /** The Noise connection, dialled on first use. */
  async control(): Promise<ControlClient> {
    if (this.#control === null || this.#control.session.closed || this.#control.session.destroyed) {
      this.#control = await ControlClient.connect({
        serverUrl: this.serverUrl,
        machineKey: this.machineKey,
        protocolVersion: this.capVersion,
        ...(this.#serverKey !== undefined ? { serverKey: this.#serverKey } : {}),
        ...(this.#http2Windows !== undefined ? { http2Windows: this.#http2Windows } : {}),
      });
      this.#serverKey = this.#control.serverKey;
    }
    return this.#control;
  }

  /** POST /machine/register; throws on a non-200 answer. */
  async register(fields: { authKey?: string; followup?: string; oldNodeKey?: NodePublicKey; expiry?: string; ephemeral?: boolean; signal?: AbortSignal } = {}): Promise<tailcfg.RegisterResponse> {
    const control = await this.control();
    const body: tailcfg.RegisterRequest = {
      Version: this.capVersion,
      NodeKey: this.nodePublicKey,
      OldNodeKey: fields.oldNodeKey ?? `nodekey:${'0'.repeat(64)}`,
      Expiry: fields.expiry ?? ZERO_TIME,
      Followup: fields.followup ?? '',
      Hostinfo: this.hostinfo,
      ...(fields.authKey !== undefined ? { Auth: { AuthKey: fields.authKey } } : {}),
      ...(fields.ephemeral ? { Ephemeral: true } : {}),
    };
    const response = await control.postJson('/machine/register', body, fields.signal !== undefined ? { signal: fields.signal } : {});
    if (response.status !== 200) {
      throw new HeadwayError(ClientErrors.REQUEST_FAILED, `client: register: HTTP ${response.status}: ${response.body.toString('utf8').trim().slice(0, 200)}`);
    }
    return response.json as tailcfg.RegisterResponse;
  }

  /** Logs in with a pre-auth key; throws with the server's message when refused. */
  async loginWithAuthKey(authKey: string, options: { ephemeral?: boolean } = {}): Promise<tailcfg.RegisterResponse> {
    const response = await this.register({ authKey, ...(options.ephemeral ? { ephemeral: true } : {}) });
    if (response.Error !== '') throw new HeadwayError(ClientErrors.REQUEST_FAILED, `client: login refused: ${response.Error}`);
    return response;
  }

  /** As `tailscale logout`: a register with an expiry in the past. */
  logout(): Promise<tailcfg.RegisterResponse> {
    return this.register({ expiry: '1970-01-01T00:02:03Z' });
  }

  /** As tailscaled after NodeKeyExpired: a new node key, registered with the old one. */
  rotateNodeKey(): NodePublicKey {
    const old = this.nodePublicKey;
    this.nodeKey = Curve25519PrivateKey.generate();
    return old;
  }

  /** Opens the streaming map poll and applies every message to `netmap` in the background. */
  async startMap(options: { endpoints?: string[]; readOnly?: boolean; decode?: boolean } = {}): Promise<void> {
    const control = await this.control();
    this.#streamAbort = new AbortController();
    this.streamEnded = false;
    this.streamError = null;
    const request: tailcfg.MapRequest = {
      Version: this.capVersion,
      Compress: 'zstd',
      KeepAlive: true,
      NodeKey: this.nodePublicKey,
      DiscoKey: this.discoPublicKey,
      Stream: true,
      Hostinfo: this.hostinfo,
      ...(options.endpoints !== undefined ? { Endpoints: options.endpoints, EndpointTypes: options.endpoints.map(() => 1) } : {}),
      ...(options.readOnly ? { ReadOnly: true } : {}),
    };
    this.#stream = await control.openMapStream(request, { signal: this.#streamAbort.signal });
    const stream = this.#stream;
    this.#pump = (async () => {
      try {
        for (;;) {
          const message = await stream.next();
          if (message === null) break;
          this.received.push(message);
          if (this.received.length > this.receivedLimit) this.received.shift();
          this.netmap.apply(message);
          this.#wake();
        }
      } catch (err) {
        if (!this.#streamAbort?.signal.aborted) this.streamError = err as Error;
      } finally {
        this.streamEnded = true;
        this.#wake();
      }
    })();
  }

  /** Closes the map poll (as a client does when it re-opens it or goes away). */
  async stopMap(): Promise<void> {
    this.#streamAbort?.abort();
    await this.#pump;
    this.#stream = null;
    this.#pump = null;
  }

  /**
   * A lite map update: endpoints and hostinfo, answered 200 with no netmap. `readOnly` as 1.34
   * sends it while it knows no endpoints of its own.
   */
  async liteUpdate(fields: { endpoints?: string[]; hostinfo?: Partial<tailcfg.Hostinfo>; readOnly?: boolean }): Promise<number> {
    if (fields.hostinfo !== undefined) this.hostinfo = { ...this.hostinfo, ...fields.hostinfo };
    const control = await this.control();
    const response = await control.postJson('/machine/map', {
      Version: this.capVersion,
      Compress: 'zstd',
      KeepAlive: true,
      NodeKey: this.nodePublicKey,
      DiscoKey: this.discoPublicKey,
      Stream: false,
      OmitPeers: true,
      Hostinfo: this.hostinfo,
      ...(fields.endpoints !== undefined ? { Endpoints: fields.endpoints, EndpointTypes: fields.endpoints.map(() => 1) } : {}),
      ...(fields.readOnly === true ? { ReadOnly: true } : {}),
    } satisfies tailcfg.MapRequest);
    return response.status;
  }

  /** Resolves once `predicate(netmap)` holds; rejects after `timeoutMs` with `what` in the message. */
  waitFor(what: string, predicate: (netmap: Netmap) => boolean, timeoutMs = 5_000): Promise<void> {
    if (predicate(this.netmap)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (predicate(this.netmap)) {
          cleanup();
          resolve();
        } else if (this.streamEnded && this.streamError !== null) {
          cleanup();
          reject(new Error(`${this.hostinfo.Hostname}: waiting for ${what}: map stream failed: ${this.streamError.message}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.hostinfo.Hostname}: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }

  async close(): Promise<void> {
    await this.stopMap();
    const control = this.#control;
    this.#control = null;
    if (control !== null) await control.close();
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}
