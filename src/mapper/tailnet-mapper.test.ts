// The mapper's shared pieces over a real tailnet pipeline (SQLite store, state, policy index,
// session hub): a complete netmap assembled from cached peer blocks and a cached UserProfiles
// list must say exactly what one built from nothing says, after every kind of change that
// alters them; and OnlineChange, written without an object, must be the JSON of one.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decompress } from 'zstd-napi';
import { Netmap } from '../client/netmap.js';
import { DnsConfigSource } from '../dns/index.js';
import type { MachinePublicKey, NodePublicKey } from '../key/index.js';
import { silentLogger } from '../log/index.js';
import type { Node, NodeId, UserId } from '../model/index.js';
import { TailnetPipeline } from '../server/index.js';
import { ServerState, type TailnetState } from '../state/index.js';
import { openTestStore, type TestStore } from '../store/testing.js';
import type * as tailcfg from '../tailcfg/index.js';
import { TailnetMapper } from './tailnet-mapper.js';
import { wireVariantOf } from './tail-node.js';

const admin = { name: 'test' };
let keyCounter = 0;
const hex = () => (++keyCounter).toString(16).padStart(64, '0');
const decode = (frame: Buffer): tailcfg.MapResponse => JSON.parse(decompress(frame.subarray(4)).toString()) as tailcfg.MapResponse;
/** The parts of a netmap that do not depend on the clock. */
const timeless = (message: tailcfg.MapResponse): unknown => ({ ...message, ControlTime: undefined });

describe('TailnetMapper shared netmap pieces', () => {
  let testStore: TestStore;
  let state: ServerState;
  let tailnet: TailnetState;
  let pipeline: TailnetPipeline;
  const dns = new DnsConfigSource({ magicDns: true, baseDomain: 'test.internal', overrideLocalDns: false, globalNameservers: [], splitNameservers: {}, searchDomains: [], extraRecords: [] });
  const derp = { current: (): tailcfg.DERPMap => ({ Regions: {} }), version: 1 };
  const nodes: Node[] = [];
  const users: UserId[] = [];

  before(async () => {
    testStore = await openTestStore('sqlite');
    state = await ServerState.load(testStore.store, { flushIntervalMs: 0 });
    tailnet = state.defaultTailnet;
    for (const name of ['ann', 'ben', 'cat']) users.push((await tailnet.createUser({ name, email: `${name}@example.com` }, admin)).id);
    // ann and ben see each other; cat sees only ann's devices.
    await tailnet.setPolicy(JSON.stringify({
      acls: [
        { action: 'accept', src: ['ann@example.com', 'ben@example.com'], dst: ['ann@example.com:*', 'ben@example.com:*'] },
        { action: 'accept', src: ['cat@example.com'], dst: ['ann@example.com:*'] },
      ],
    }), admin, { persist: true });
    // Forty devices: more than one peer block (32 node ids each).
    for (let i = 0; i < 40; i++) {
      nodes.push(await tailnet.addNode({
        machineKey: `mkey:${hex()}` as MachinePublicKey, nodeKey: `nodekey:${hex()}` as NodePublicKey,
        hostinfo: { Hostname: `d${i}` }, userId: users[i % 3]!, keyExpiry: null, ephemeral: false, registerMethod: 'cli',
      }, admin));
    }
    pipeline = new TailnetPipeline(tailnet, { dns, derp, logger: silentLogger() }, {
      coalesceMs: 60_000, keepAliveMs: 60_000, nodeExpiryMs: 0, ephemeralInactivityMs: 60_000, offlineGraceMs: 60_000,
    });
  });
  after(async () => {
    pipeline.close();
    await state.close();
    await testStore.cleanup();
  });

  const memory = () => ({ capVersion: 130, variant: wireVariantOf(130), sentUsers: new Set<number>(), filterKey: null });
  /** The netmap from the pipeline's mapper, whose caches are warm. */
  const shared = (id: NodeId) => decode(pipeline.mapper.fullMap(id, memory()));
  /** The netmap from a mapper that has cached nothing. */
  const fresh = (id: NodeId) => decode(new TailnetMapper({ state: tailnet, policy: pipeline.policy, dns: pipeline.dns, derp }).fullMap(id, memory()));
  const assertAllFresh = (why: string) => {
    for (const node of nodes) assert.deepEqual(timeless(shared(node.id)), timeless(fresh(node.id)), `${why}: netmap of ${node.givenName}`);
  };

  it('gives each viewer its own peers and users from blocks shared with other viewers', () => {
    const compressionsBefore = pipeline.mapper.stats.compressions;
    assertAllFresh('first build');
    // Visibility is symmetric: ann's devices see cat's too.
    const ann = shared(nodes[0]!.id);
    assert.equal(ann.Peers?.length, 39, 'ann sees every other device');
    assert.deepEqual(ann.UserProfiles?.map((u) => u.LoginName), ['ann@example.com', 'ben@example.com', 'cat@example.com']);
    const ben = shared(nodes[1]!.id);
    assert.equal(ben.Peers?.length, 26, 'ben sees the devices of ann and ben but itself');
    assert.deepEqual(ben.UserProfiles?.map((u) => u.LoginName), ['ann@example.com', 'ben@example.com']);
    const cat = shared(nodes[2]!.id);
    assert.deepEqual([...new Set(cat.Peers?.map((p) => p.User))], [users[0]], 'cat sees only ann');
    assert.deepEqual(cat.UserProfiles?.map((u) => u.LoginName), ['ann@example.com', 'cat@example.com']);
    assert.ok(pipeline.mapper.stats.compressions - compressionsBefore > nodes.length, 'the first round compresses blocks and lists');
    const secondRound = pipeline.mapper.stats.compressions;
    assertAllFresh('again');
    assert.equal(pipeline.mapper.stats.compressions - secondRound, nodes.length, 'the second round compresses only each netmap\'s own part');
  });

  it('shows a peer\'s change, presence and a renamed user in every netmap built after it', async () => {
    await tailnet.applyLiveUpdate(nodes[33]!.id, { endpoints: ['198.51.100.33:41641'] });
    pipeline.hub.flushNow();
    assertAllFresh('after an endpoint change');
    assert.deepEqual(shared(nodes[0]!.id).Peers?.find((p) => p.ID === nodes[33]!.id)?.Endpoints, ['198.51.100.33:41641']);
    tailnet.setPresence(nodes[4]!.id, { online: true, capVersion: 130 });
    pipeline.hub.flushNow();
    assertAllFresh('after a peer came online');
    assert.equal(shared(nodes[0]!.id).Peers?.find((p) => p.ID === nodes[4]!.id)?.Online, true);
    await tailnet.updateUser(users[1]!, { displayName: 'Ben Renamed' }, admin);
    pipeline.hub.flushNow();
    assertAllFresh('after a user was renamed');
    assert.equal(shared(nodes[0]!.id).UserProfiles?.find((u) => u.ID === users[1])?.DisplayName, 'Ben Renamed');
  });

  it('follows the policy: a viewer that loses sight of a user loses its devices and profile', async () => {
    await tailnet.setPolicy(JSON.stringify({
      acls: [{ action: 'accept', src: ['ann@example.com', 'ben@example.com'], dst: ['ann@example.com:*', 'ben@example.com:*'] }],
    }), admin, { persist: true });
    pipeline.hub.flushNow();
    assertAllFresh('after the policy edit');
    assert.deepEqual(shared(nodes[2]!.id).Peers ?? [], [], 'cat sees nobody now');
    assert.deepEqual(shared(nodes[2]!.id).UserProfiles?.map((u) => u.LoginName), ['cat@example.com']);
    await tailnet.deleteNode(nodes[39]!.id, admin);
    nodes.pop();
    pipeline.hub.flushNow();
    assertAllFresh('after a node was deleted');
  });

  it('gives every session holding the same online marks and change the message its own marks call for', async () => {
    const frames = new Map<NodeId, Buffer[]>();
    for (const node of nodes) {
      const list: Buffer[] = [];
      frames.set(node.id, list);
      pipeline.hub.open(node.id, 130, { write(frame: Buffer) { list.push(frame); return true; }, onceDrain() {}, end() {} });
    }
    const arriving = [nodes[7]!, nodes[5]!, nodes[6]!, nodes[10]!];
    for (const node of arriving) tailnet.setPresence(node.id, { online: true, capVersion: 130 });
    const mover = nodes[1]!;
    await tailnet.applyLiveUpdate(mover.id, { endpoints: ['198.51.100.1:7000'] });
    pipeline.hub.flushNow();
    let recipients = 0;
    for (const node of nodes) {
      const written = frames.get(node.id)!;
      if (!pipeline.policy.sees(node.id, mover.id)) {
        assert.equal(written.length, 1, `${node.givenName} got only its netmap`);
        continue;
      }
      recipients++;
      assert.equal(written.length, 2, `${node.givenName}: netmap and one delta`);
      const seen = arriving.filter((peer) => peer.id !== node.id && pipeline.policy.sees(node.id, peer.id)).map((peer) => peer.id).sort((a, b) => a - b);
      const expected: tailcfg.MapResponse = { PeersChangedPatch: [{ NodeID: mover.id, Endpoints: ['198.51.100.1:7000'] }] };
      if (seen.length > 0) expected.OnlineChange = Object.fromEntries(seen.map((id) => [String(id), true]));
      assert.deepEqual(decode(written[1]!), expected, `${node.givenName}`);
    }
    assert.ok(recipients > 20);
    for (const node of nodes) pipeline.hub.closeNode(node.id);
  });

  it('leaves every client of a reconnect storm holding every peer online, as its netmap would say', () => {
    for (const node of nodes) {
      pipeline.hub.closeNode(node.id);
      tailnet.setPresence(node.id, { online: false, capVersion: 130 });
    }
    const held = new Map<NodeId, Netmap>();
    nodes.forEach((node, i) => {
      const netmap = new Netmap();
      held.set(node.id, netmap);
      tailnet.setPresence(node.id, { online: true, capVersion: 130 });
      pipeline.hub.open(node.id, 130, { write(frame: Buffer) { netmap.apply(decode(frame)); return true; }, onceDrain() {}, end() {} });
      // Now and then something urgent takes the pending online marks of some sessions along.
      if (i % 7 === 6) {
        for (const other of nodes.slice(0, i).filter((_, j) => j % 3 === i % 3)) pipeline.hub.markSelf(other.id, 'dns');
        pipeline.hub.flushNow();
      }
    });
    for (const node of nodes) pipeline.hub.markSelf(node.id, 'dns');
    pipeline.hub.flushNow();
    for (const node of nodes) {
      const netmap = held.get(node.id)!;
      const expected = fresh(node.id).Peers ?? [];
      assert.deepEqual([...netmap.peers.keys()].sort((a, b) => a - b), expected.map((p) => p.ID).sort((a, b) => a - b), `${node.givenName}: its peers`);
      for (const peer of netmap.peers.values()) assert.equal(peer.Online, true, `${node.givenName} holds ${peer.Name} online`);
    }
    for (const node of nodes) pipeline.hub.closeNode(node.id);
  });

  it('writes OnlineChange and PeerSeenChange as the JSON of the changes, in ascending node order', () => {
    const viewer = nodes[0]!.id;
    const changes: Array<[Node, boolean]> = [[nodes[30]!, true], [nodes[3]!, true], [nodes[4]!, false], [nodes[12]!, true]];
    for (const [node, online] of changes) tailnet.setPresence(node.id, { online: !online, capVersion: 130 });
    const sink = { frames: [] as Buffer[], write(frame: Buffer) { this.frames.push(frame); return true; }, onceDrain() {}, end() {} };
    pipeline.hub.open(viewer, 130, sink);
    for (const [node, online] of changes) tailnet.setPresence(node.id, { online, capVersion: 130 });
    // Online marks wait for the presence window; anything urgent takes them along.
    pipeline.hub.markSelf(viewer, 'dns');
    pipeline.hub.flushNow();
    const message = decode(sink.frames.at(-1)!);
    assert.deepEqual(message.OnlineChange, { [nodes[3]!.id]: true, [nodes[4]!.id]: false, [nodes[12]!.id]: true, [nodes[30]!.id]: true });
    assert.deepEqual(message.PeerSeenChange, { [nodes[4]!.id]: true });
    const raw = decompress(sink.frames.at(-1)!.subarray(4)).toString();
    assert.ok(raw.includes(`"OnlineChange":${JSON.stringify(message.OnlineChange)}`), raw);
  });
});
