// The DERP mesh between the instances (docs/ha.md), as Tailscale meshes the relays of a region:
// this instance dials every other live instance's relay with the mesh key, sends WatchConns,
// and learns from PeerPresent / PeerGone which client keys are connected there. A packet for a
// key not connected here goes to the instance that has it in a ForwardPacket frame, so two
// clients whose DERP connections landed on different instances still reach each other.
import { DerpClient, ClientFrameType } from '../client/derp/index.js';
import { Curve25519PrivateKey } from '../key/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';

const KEY_BYTES = 32;

interface MeshPeer {
  readonly instanceId: string;
  readonly url: string;
  client: DerpClient | null;
  connecting: boolean;
  readonly keys: Set<string>;
}

export class DerpMesh {
  readonly #store: Store;
  readonly #instanceId: string;
  readonly #meshKey: string;
  readonly #logger: Logger;
  readonly #refreshMs: number;
  readonly #peers = new Map<string, MeshPeer>();
  /** Client key (32 raw bytes as latin1, the relay's key id) -> the peer it is connected to. */
  readonly #keyToPeer = new Map<string, MeshPeer>();
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly stats = { forwarded: 0 };

  constructor(options: { store: Store; instanceId: string; meshKey: string; logger: Logger; refreshMs: number }) {
    this.#store = options.store;
    this.#instanceId = options.instanceId;
    this.#meshKey = options.meshKey;
    this.#logger = options.logger.child({ part: 'derp-mesh' });
    this.#refreshMs = options.refreshMs;
  }

  start(): void {
    this.#timer = setInterval(() => void this.refresh().catch(() => undefined), this.#refreshMs);
    this.#timer.unref();
    void this.refresh().catch(() => undefined);
  }

  /** Number of mesh peers with an open watch connection. */
  get connectedPeers(): number {
    let count = 0;
    for (const peer of this.#peers.values()) if (peer.client !== null) count++;
    return count;
  }

  /** Dials live instances not yet meshed, drops instances that left. */
  async refresh(): Promise<void> {
    if (this.#closed) return;
    const instances = await this.#store.read.ha.instances();
    const live = new Map(instances.filter((i) => i.alive && i.instanceId !== this.#instanceId && i.advertiseUrl !== '').map((i) => [i.instanceId, i]));
    for (const [id, peer] of this.#peers) {
      if (!live.has(id) || live.get(id)!.advertiseUrl !== peer.url) this.#drop(peer);
    }
    for (const instance of live.values()) {
      let peer = this.#peers.get(instance.instanceId);
      if (peer === undefined) {
        peer = { instanceId: instance.instanceId, url: instance.advertiseUrl, client: null, connecting: false, keys: new Set() };
        this.#peers.set(instance.instanceId, peer);
      }
      if (peer.client === null && !peer.connecting) void this.#dial(peer);
    }
  }

  /** The relay's forwarder: true when the packet went to the instance holding `dstKeyId`. */
  readonly forward = (srcKeyRaw: Buffer, dstKeyId: string, packet: Buffer): boolean => {
    const peer = this.#keyToPeer.get(dstKeyId);
    if (peer?.client == null) return false;
    peer.client.sendFrame(ClientFrameType.ForwardPacket, Buffer.concat([srcKeyRaw, Buffer.from(dstKeyId, 'latin1'), packet]));
    this.stats.forwarded++;
    return true;
  };

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    for (const peer of [...this.#peers.values()]) this.#drop(peer);
  }

  async #dial(peer: MeshPeer): Promise<void> {
    peer.connecting = true;
    try {
      const client = await DerpClient.connect({
        url: `${peer.url.replace(/\/+$/, '')}/derp`,
        // A throwaway identity: the mesh key, not the node key, admits a mesh connection.
        privateKey: Curve25519PrivateKey.generate(),
        meshKey: this.#meshKey,
        appName: `headway-mesh/${this.#instanceId}`,
        timeoutMs: 5_000,
      });
      if (this.#closed || this.#peers.get(peer.instanceId) !== peer) {
        client.close();
        return;
      }
      peer.client = client;
      client.onFrame((type, payload) => {
        if (payload.length < KEY_BYTES) return;
        const keyId = payload.toString('latin1', 0, KEY_BYTES);
        if (type === ClientFrameType.PeerPresent) {
          peer.keys.add(keyId);
          this.#keyToPeer.set(keyId, peer);
        } else if (type === ClientFrameType.PeerGone) {
          peer.keys.delete(keyId);
          if (this.#keyToPeer.get(keyId) === peer) this.#keyToPeer.delete(keyId);
        }
      });
      client.onClose(() => {
        if (peer.client === client) this.#forgetKeys(peer);
        if (peer.client === client) peer.client = null;
      });
      client.sendFrame(ClientFrameType.WatchConns, Buffer.alloc(0));
      this.#logger.info({ peer: peer.instanceId }, 'meshed with the relay of another instance');
    } catch (err) {
      this.#logger.warn({ err, peer: peer.instanceId, url: peer.url }, 'dialling a mesh peer failed; retrying');
    } finally {
      peer.connecting = false;
    }
  }

  #forgetKeys(peer: MeshPeer): void {
    for (const keyId of peer.keys) if (this.#keyToPeer.get(keyId) === peer) this.#keyToPeer.delete(keyId);
    peer.keys.clear();
  }

  #drop(peer: MeshPeer): void {
    this.#peers.delete(peer.instanceId);
    this.#forgetKeys(peer);
    const client = peer.client;
    peer.client = null;
    client?.close();
  }
}
