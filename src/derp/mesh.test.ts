// The relay's side of the DERP mesh (high availability, docs/ha.md): a connection presenting the
// region's mesh key may watch connections (PeerPresent / PeerGone) and forward packets; a packet
// for a key not connected here goes to the mesh forwarder. Real sockets, our real DERP client.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DerpClient, ClientFrameType } from '../client/derp/index.js';
import { Curve25519PrivateKey, publicKeyBytes, type NodePublicKey } from '../key/index.js';
import { startTestDerp, waitUntil, type TestDerp } from './testing.js';

const MESH_KEY = 'ab'.repeat(32);

describe('derp mesh', () => {
  let derp: TestDerp;
  before(async () => { derp = await startTestDerp({ meshKey: MESH_KEY }); });
  after(async () => { await derp.close(); });

  const connect = (options: { meshKey?: string } = {}) => DerpClient.connect({ url: derp.url, privateKey: Curve25519PrivateKey.generate(), ...options });

  it('tells a mesh watcher which keys are present and which leave', async () => {
    const early = await connect();
    const watcher = await connect({ meshKey: MESH_KEY });
    const present = new Set<string>();
    const gone = new Set<string>();
    watcher.onFrame((type, payload) => {
      const key = payload.subarray(0, 32).toString('hex');
      if (type === ClientFrameType.PeerPresent) present.add(key);
      if (type === ClientFrameType.PeerGone) gone.add(key);
    });
    watcher.sendFrame(ClientFrameType.WatchConns, Buffer.alloc(0));
    const hex = (key: NodePublicKey) => publicKeyBytes(key).toString('hex');
    await waitUntil('the early client announced', () => present.has(hex(early.publicKey)));
    const late = await connect();
    await waitUntil('the late client announced', () => present.has(hex(late.publicKey)));
    assert.equal(present.has(hex(watcher.publicKey)), false, 'mesh connections are not announced');
    late.close();
    await waitUntil('the late client gone', () => gone.has(hex(late.publicKey)));
    early.close();
    watcher.close();
  });

  it('delivers a forwarded packet to the client connected here, from the original sender', async () => {
    const receiver = await connect();
    const peer = await connect({ meshKey: MESH_KEY });
    const sender = Curve25519PrivateKey.generate().publicKey('node');
    const got: Array<{ src: string; text: string }> = [];
    receiver.onPacket((src, packet) => got.push({ src, text: packet.toString('utf8') }));
    peer.sendFrame(ClientFrameType.ForwardPacket, Buffer.concat([publicKeyBytes(sender), publicKeyBytes(receiver.publicKey), Buffer.from('forwarded')]));
    await waitUntil('the forwarded packet', () => got.length === 1);
    assert.deepEqual(got[0], { src: sender, text: 'forwarded' });
    receiver.close();
    peer.close();
  });

  it('hands a packet for an absent key to the mesh forwarder', async () => {
    const forwarded: Array<{ dst: string; text: string }> = [];
    derp.relay.setMeshForwarder((_src, dstId, packet) => {
      forwarded.push({ dst: Buffer.from(dstId, 'latin1').toString('hex'), text: packet.toString('utf8') });
      return true;
    });
    try {
      const sender = await connect();
      const elsewhere = Curve25519PrivateKey.generate().publicKey('node');
      sender.sendPacket(elsewhere, Buffer.from('over there'));
      await waitUntil('the forwarder called', () => forwarded.length === 1);
      assert.deepEqual(forwarded[0], { dst: publicKeyBytes(elsewhere).toString('hex'), text: 'over there' });
      sender.close();
    } finally {
      derp.relay.setMeshForwarder(null);
    }
  });

  it('treats a wrong mesh key as an ordinary client: mesh frames close it', async () => {
    const impostor = await connect({ meshKey: 'cd'.repeat(32) });
    const before = derp.relay.stats.closed.mesh_frame;
    impostor.sendFrame(ClientFrameType.WatchConns, Buffer.alloc(0));
    await waitUntil('the impostor closed', () => derp.relay.stats.closed.mesh_frame === before + 1);
  });
});
