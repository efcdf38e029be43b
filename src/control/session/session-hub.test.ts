// The delta engine over a real tailnet pipeline (SQLite store, state, policy index, mapper,
// session hub) with in-memory frame sinks in place of sockets: who receives a frame for an
// event, how many, and what a stalled client does to the others.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decompress } from 'zstd-napi';
import { silentLogger } from '../../log/index.js';
import { DnsConfigSource } from '../../dns/index.js';
import type { MachinePublicKey, NodePublicKey } from '../../key/index.js';
import type { Node, NodeId, UserId } from '../../model/index.js';
import { PatchField } from '../../mapper/index.js';
import { TailnetPipeline } from '../../server/index.js';
import { ServerState, type TailnetState } from '../../state/index.js';
import { openTestStore, type TestStore } from '../../store/testing.js';
import type * as tailcfg from '../../tailcfg/index.js';
import type { FrameSink } from './map-session.js';
import { SessionHub } from './session-hub.js';

const admin = { name: 'test' };
let keyCounter = 0;
const hex = () => (++keyCounter).toString(16).padStart(64, '0');

/** A sink that records decoded messages and can refuse writes (a stalled client). */
class RecordingSink implements FrameSink {
  readonly messages: tailcfg.MapResponse[] = [];
  frames = 0;
  stalled = false;
  #drain: (() => void) | null = null;
  write(frame: Buffer): boolean {
    this.frames++;
    assert.equal(frame.readUInt32LE(0), frame.length - 4);
    this.messages.push(JSON.parse(decompress(frame.subarray(4)).toString()) as tailcfg.MapResponse);
    return !this.stalled;
  }
  onceDrain(listener: () => void): void {
    this.#drain = listener;
  }
  end(): void {}
  unstall(): void {
    this.stalled = false;
    const drain = this.#drain;
    this.#drain = null;
    drain?.();
  }
}

describe('session hub and change router', () => {
  let testStore: TestStore;
  let state: ServerState;
  let tailnet: TailnetState;
  let pipeline: TailnetPipeline;
  const nodes: Node[] = [];
  const sinks = new Map<NodeId, RecordingSink>();

  before(async () => {
    testStore = await openTestStore('sqlite');
    state = await ServerState.load(testStore.store, { flushIntervalMs: 0 });
    tailnet = state.defaultTailnet;
    // Two teams that do not see each other, and a shared server both reach.
    const alice = await tailnet.createUser({ name: 'alice', email: 'alice@example.com' }, admin);
    const bob = await tailnet.createUser({ name: 'bob', email: 'bob@example.com' }, admin);
    await tailnet.setPolicy(JSON.stringify({
      tagOwners: { 'tag:shared': ['alice@example.com'] },
      acls: [
        { action: 'accept', src: ['alice@example.com'], dst: ['alice@example.com:*', 'tag:shared:443'] },
        { action: 'accept', src: ['bob@example.com'], dst: ['bob@example.com:*', 'tag:shared:443'] },
      ],
    }), admin, { persist: true });
    const add = (hostname: string, userId: UserId, tags: string[] = []) => tailnet.addNode({
      machineKey: `mkey:${hex()}` as MachinePublicKey, nodeKey: `nodekey:${hex()}` as NodePublicKey,
      hostinfo: { Hostname: hostname }, userId, tags, keyExpiry: null, ephemeral: false, registerMethod: 'cli',
    }, admin);
    for (const name of ['a1', 'a2', 'a3']) nodes.push(await add(name, alice.id));
    for (const name of ['b1', 'b2']) nodes.push(await add(name, bob.id));
    nodes.push(await add('shared', alice.id, ['tag:shared']));
    const dns = new DnsConfigSource({ magicDns: true, baseDomain: 'test.internal', overrideLocalDns: false, globalNameservers: [], splitNameservers: {}, searchDomains: [], extraRecords: [] });
    pipeline = new TailnetPipeline(tailnet, { dns, derp: { current: () => ({ Regions: {} }), version: 1 }, logger: silentLogger() }, {
      coalesceMs: 60_000, keepAliveMs: 60_000, nodeExpiryMs: 0, ephemeralInactivityMs: 60_000, offlineGraceMs: 60_000,
    });
    for (const node of nodes) {
      const sink = new RecordingSink();
      sinks.set(node.id, sink);
      pipeline.hub.open(node.id, 130, sink);
    }
  });
  after(async () => {
    pipeline.close();
    await state.close();
    await testStore.cleanup();
  });

  const byName = (name: string) => nodes.find((n) => n.givenName === name)!;
  const reset = () => { for (const s of sinks.values()) { s.frames = 0; s.messages.length = 0; } };

  it('starts every session with one complete netmap of exactly its visible peers', () => {
    const a1 = sinks.get(byName('a1').id)!;
    assert.equal(a1.frames, 1);
    const names = (a1.messages[0]!.Peers ?? []).map((p) => p.Name.split('.')[0]).sort();
    assert.deepEqual(names, ['a2', 'a3', 'shared']);
    const shared = sinks.get(byName('shared').id)!.messages[0]!;
    assert.deepEqual((shared.Peers ?? []).map((p) => p.Name.split('.')[0]).sort(), ['a1', 'a2', 'a3', 'b1', 'b2']);
  });

  it('sends an endpoint change as one patch frame to each node that sees the changed node, and to no other', async () => {
    reset();
    const a2 = byName('a2');
    await tailnet.applyLiveUpdate(a2.id, { endpoints: ['198.51.100.2:41641'] });
    pipeline.hub.flushNow();
    const receivers = [...sinks].filter(([, s]) => s.frames > 0).map(([id]) => nodes.find((n) => n.id === id)!.givenName).sort();
    assert.deepEqual(receivers, ['a1', 'a3', 'shared']);
    for (const name of receivers) {
      const sink = sinks.get(byName(name).id)!;
      assert.equal(sink.frames, 1, `${name} gets one frame`);
      assert.deepEqual(sink.messages[0], { PeersChangedPatch: [{ NodeID: a2.id, Endpoints: ['198.51.100.2:41641'] }] });
    }
    assert.equal(pipeline.mapper.stats.patchSerialisations > 0, true);
  });

  it('coalesces several changes in one window into one frame per recipient, and compresses a shared message once', async () => {
    reset();
    const compressionsBefore = pipeline.mapper.stats.compressions;
    const a1 = byName('a1');
    for (let i = 0; i < 5; i++) await tailnet.applyLiveUpdate(a1.id, { endpoints: [`198.51.100.1:${1000 + i}`] });
    pipeline.hub.flushNow();
    for (const name of ['a2', 'a3', 'shared']) {
      const sink = sinks.get(byName(name).id)!;
      assert.equal(sink.frames, 1);
      assert.deepEqual(sink.messages[0]!.PeersChangedPatch, [{ NodeID: a1.id, Endpoints: ['198.51.100.1:1004'] }], 'only the latest value');
    }
    assert.equal(pipeline.mapper.stats.compressions - compressionsBefore, 1, 'three recipients, one identical message, one compression');
  });

  it('does not let a stalled client delay the others, and keeps its backlog to one mark per peer', async () => {
    reset();
    const a3 = sinks.get(byName('a3').id)!;
    a3.stalled = true;
    await tailnet.applyLiveUpdate(byName('a1').id, { endpoints: ['198.51.100.1:2000'] });
    pipeline.hub.flushNow();
    assert.equal(a3.frames, 1, 'the write that filled its buffer');
    reset();
    for (let i = 0; i < 50; i++) {
      await tailnet.applyLiveUpdate(byName('a1').id, { endpoints: [`198.51.100.1:${3000 + i}`] });
      await tailnet.applyLiveUpdate(byName('a2').id, { endpoints: [`198.51.100.2:${3000 + i}`] });
      pipeline.hub.flushNow();
    }
    assert.equal(a3.frames, 0, 'nothing is written to a stalled client');
    assert.equal(sinks.get(byName('shared').id)!.frames, 50, 'the others get every flush');
    const session = [...pipeline.hub.sessionsOf(byName('a3').id)!][0]!;
    assert.equal(session.pending.peerCount, 2, 'a bounded summary: one mark per changed peer');
    a3.unstall();
    pipeline.hub.flushNow();
    assert.equal(a3.frames, 1, 'one catch-up frame after the drain');
    const patches = a3.messages[0]!.PeersChangedPatch!;
    assert.deepEqual(patches.map((p) => p.Endpoints), [['198.51.100.1:3049'], ['198.51.100.2:3049']]);
  });

  it('marks every session of a node that holds several, and stops marking each one once it is removed', async () => {
    const a1 = byName('a1');
    const first = pipeline.hub.sessionsOf(a1.id)![0]!;
    const extra = [new RecordingSink(), new RecordingSink()];
    const sessions = extra.map((sink) => pipeline.hub.open(a1.id, 130, sink));
    const endpointChange = async (port: number) => {
      reset();
      for (const sink of extra) { sink.frames = 0; sink.messages.length = 0; }
      await tailnet.applyLiveUpdate(byName('a2').id, { endpoints: [`198.51.100.2:${port}`] });
      pipeline.hub.flushNow();
      return [sinks.get(a1.id)!.frames, extra[0]!.frames, extra[1]!.frames];
    };
    assert.deepEqual(await endpointChange(4000), [1, 1, 1], 'three sessions, three frames');
    pipeline.hub.remove(sessions[0]!);
    assert.deepEqual(await endpointChange(4001), [1, 0, 1], 'the middle one removed');
    pipeline.hub.remove(first);
    assert.deepEqual(await endpointChange(4002), [0, 0, 1], 'the first one removed');
    pipeline.hub.remove(sessions[1]!);
    assert.deepEqual(await endpointChange(4003), [0, 0, 0], 'none left');
    assert.equal(pipeline.hub.hasSession(a1.id), false);
    pipeline.hub.open(a1.id, 130, sinks.get(a1.id)!);
    assert.deepEqual(await endpointChange(4004), [1, 0, 0], 'a new session after all had gone');
  });

  // A lone peer patch is held in the hub's per-node cells, outside the session's summary (see
  // held-marks.ts); whatever comes next for that node must still arrive with it, in one frame.
  it('sends a held patch together with a self part that arrives before the flush', async () => {
    reset();
    const a1 = byName('a1');
    const a2 = byName('a2');
    await tailnet.applyLiveUpdate(a1.id, { endpoints: ['198.51.100.1:5000'] });
    pipeline.hub.markSelf(a2.id, 'dns');
    pipeline.hub.flushNow();
    const sink = sinks.get(a2.id)!;
    assert.equal(sink.frames, 1);
    assert.deepEqual(sink.messages[0]!.PeersChangedPatch, [{ NodeID: a1.id, Endpoints: ['198.51.100.1:5000'] }]);
    assert.ok(sink.messages[0]!.DNSConfig !== undefined, 'the DNS part too');
    assert.deepEqual(sinks.get(byName('a3').id)!.messages, [{ PeersChangedPatch: [{ NodeID: a1.id, Endpoints: ['198.51.100.1:5000'] }] }]);
  });

  it('sends a held patch together with a full mark for another peer, and merges patches of one peer', async () => {
    reset();
    const a1 = byName('a1');
    const a2 = byName('a2');
    const a3 = byName('a3');
    await tailnet.applyLiveUpdate(a1.id, { endpoints: ['198.51.100.1:5100'] });
    await tailnet.applyLiveUpdate(a1.id, { endpoints: ['198.51.100.1:5101'] });
    pipeline.hub.markPeer(a2.id, a3.id, { kind: 'full' });
    pipeline.hub.flushNow();
    const message = sinks.get(a2.id)!.messages;
    assert.equal(message.length, 1);
    assert.deepEqual(message[0]!.PeersChangedPatch, [{ NodeID: a1.id, Endpoints: ['198.51.100.1:5101'] }]);
    assert.deepEqual(message[0]!.PeersChanged?.map((p) => p.ID), [a3.id]);
    reset();
    await tailnet.applyLiveUpdate(a1.id, { endpoints: ['198.51.100.1:5102'] });
    pipeline.hub.flushNow();
    assert.deepEqual(sinks.get(a2.id)!.messages, [{ PeersChangedPatch: [{ NodeID: a1.id, Endpoints: ['198.51.100.1:5102'] }] }], 'held again once the summary is empty');
  });

  it('keeps a held patch for a stalled session and sends it on drain', async () => {
    const a1 = byName('a1');
    const shared = sinks.get(byName('shared').id)!;
    shared.stalled = true;
    await tailnet.applyLiveUpdate(a1.id, { endpoints: ['198.51.100.1:5200'] });
    pipeline.hub.flushNow();
    reset();
    await tailnet.applyLiveUpdate(a1.id, { endpoints: ['198.51.100.1:5201'] });
    pipeline.hub.flushNow();
    assert.equal(shared.frames, 0, 'nothing written while the transport is full');
    shared.unstall();
    pipeline.hub.flushNow();
    assert.deepEqual(shared.messages, [{ PeersChangedPatch: [{ NodeID: a1.id, Endpoints: ['198.51.100.1:5201'] }] }]);
  });

  it('gives a held patch to the first session when a second opens, and drops it with a removed session', async () => {
    reset();
    const a1 = byName('a1');
    const a3 = byName('a3');
    const first = pipeline.hub.sessionsOf(a3.id)![0]!;
    await tailnet.applyLiveUpdate(a1.id, { endpoints: ['198.51.100.1:5300'] });
    const second = new RecordingSink();
    const opened = pipeline.hub.open(a3.id, 130, second);
    pipeline.hub.flushNow();
    assert.deepEqual(sinks.get(a3.id)!.messages, [{ PeersChangedPatch: [{ NodeID: a1.id, Endpoints: ['198.51.100.1:5300'] }] }]);
    assert.equal(second.frames, 1, 'the new session: its netmap only');
    pipeline.hub.remove(opened);
    reset();
    await tailnet.applyLiveUpdate(a1.id, { endpoints: ['198.51.100.1:5301'] });
    pipeline.hub.remove(first);
    pipeline.hub.flushNow();
    assert.equal(sinks.get(a3.id)!.frames, 0, 'removed before the flush');
    assert.equal(pipeline.hub.dirtyCount, 0);
    pipeline.hub.open(a3.id, 130, sinks.get(a3.id)!);
    reset();
    await tailnet.applyLiveUpdate(byName('a2').id, { endpoints: ['198.51.100.2:5302'] });
    pipeline.hub.flushNow();
    assert.deepEqual(sinks.get(a3.id)!.messages, [{ PeersChangedPatch: [{ NodeID: byName('a2').id, Endpoints: ['198.51.100.2:5302'] }] }], 'no stale mark in the reopened session');
  });

  it('stretches its window while flushes come back to back, and starts from the configured one after a quiet spell', async () => {
    const hub = new SessionHub(pipeline.mapper, { coalesceMs: 5, keepAliveMs: 60_000 });
    const session = hub.attach(byName('a1').id, 130, new RecordingSink());
    const busyFor = (ms: number) => { const until = performance.now() + ms; while (performance.now() < until) { /* a busy event loop */ } };
    const change = () => { session.pending.selfChanged = true; hub.schedule(session); };
    try {
      for (let i = 0; i < 5; i++) {
        change();
        busyFor(20);
        hub.flushNow();
      }
      const stretched = hub.windowMs;
      assert.ok(stretched > 5, `a busy loop stretches the window (${stretched} ms)`);
      change();
      assert.equal(hub.windowMs, stretched, 'a change right after a flush is part of the burst');
      hub.flushNow();
      await new Promise((resolve) => setTimeout(resolve, stretched + 20));
      change();
      assert.equal(hub.windowMs, 5, 'a change after a quiet spell waits the configured window');
    } finally {
      hub.closeAll();
    }
  });

  it('sends a held patch within the coalescing window when an online mark for another peer follows it', async () => {
    const hub = new SessionHub(pipeline.mapper, { coalesceMs: 5, keepAliveMs: 60_000, presenceWindowMs: 60_000 });
    const sink = new RecordingSink();
    const a1 = byName('a1');
    const a2 = byName('a2');
    const a3 = byName('a3');
    try {
      hub.open(a2.id, 130, sink);
      const netmapFrames = sink.frames;
      hub.markPeer(a2.id, a1.id, { kind: 'patch', fields: PatchField.Endpoints });
      hub.markPeer(a2.id, a3.id, { kind: 'patch', fields: PatchField.Online });
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(sink.frames, netmapFrames + 1, 'the endpoint patch did not wait for the presence window');
      const message = sink.messages.at(-1)!;
      assert.deepEqual(message.PeersChangedPatch?.map((p) => p.NodeID), [a1.id], 'the endpoint patch');
      assert.ok(message.OnlineChange !== undefined && a3.id in message.OnlineChange, 'and the online mark with it');
    } finally {
      hub.closeAll();
    }
  });

  it('tells only the nodes that see a new node, and removes it from them when it leaves', async () => {
    reset();
    const bob = tailnet.userByName('bob')!;
    const b3 = await tailnet.addNode({
      machineKey: `mkey:${hex()}` as MachinePublicKey, nodeKey: `nodekey:${hex()}` as NodePublicKey,
      hostinfo: { Hostname: 'b3' }, userId: bob.id, keyExpiry: null, ephemeral: false, registerMethod: 'cli',
    }, admin);
    pipeline.hub.flushNow();
    const receivers = [...sinks].filter(([, s]) => s.frames > 0).map(([id]) => nodes.find((n) => n.id === id)!.givenName).sort();
    assert.deepEqual(receivers, ['b1', 'b2', 'shared']);
    assert.equal(sinks.get(byName('b1').id)!.messages[0]!.PeersChanged?.[0]?.ID, b3.id);
    reset();
    await tailnet.deleteNode(b3.id, admin);
    pipeline.hub.flushNow();
    assert.deepEqual(sinks.get(byName('b1').id)!.messages[0]!.PeersRemoved, [b3.id]);
    assert.equal(sinks.get(byName('a1').id)!.frames, 0);
  });
});
