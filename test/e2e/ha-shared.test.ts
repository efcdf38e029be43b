// High availability, what instances share besides the rows in memory (docs/ha.md): an
// interactive login started on one instance completes through another, each webhook event is
// delivered once however many instances there are (retries included), and an SSH check passed
// through one instance is honoured by another within checkPeriod.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeClient } from '../../src/client/index.js';
import { startTestCluster, waitUntil, type TestCluster } from '../../src/ha/testing.js';
import { startTestProvider, TestBrowser } from '../../src/identity/testing.js';
import type { RunningServer } from '../../src/server/index.js';
import { withFreePorts } from '../support/free-port.js';
import { CHECK_POLICY, CHECK_URL, fetchSshAction } from '../support/ssh-action.js';
import type { WebhookEvent } from '../../src/webhooks/index.js';

const admin = { name: 'test' };

/** Counts every POST; the first `failFirst` are answered 503 (so they must be retried). */
class CountingReceiver {
  readonly events: WebhookEvent[] = [];
  posts = 0;
  failFirst = 0;
  readonly #server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.posts++;
      if (this.posts <= this.failFirst) {
        res.writeHead(503).end();
        return;
      }
      this.events.push(...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookEvent[]));
      res.writeHead(200).end();
    });
  });

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

describe('high availability: shared logins and webhooks (three instances)', () => {
  let cluster: TestCluster;
  let receiver: CountingReceiver;

  before(async () => {
    cluster = await startTestCluster(3, { start: { webhooks: { pollIntervalMs: 50, retryBaseMs: 200 } } });
    receiver = new CountingReceiver();
  });
  after(async () => {
    await cluster.cleanup();
    await receiver.close();
  });

  it('completes an interactive login started on instance 1, polled through instance 2 and approved through instance 3', async () => {
    const [one, two, three] = cluster.instances as [RunningServer, RunningServer, RunningServer];
    const carol = await one.state.defaultTailnet.createUser({ name: 'carol' }, admin);
    const onOne = new NodeClient({ serverUrl: one.url, hostname: 'tablet', capVersion: 109 });
    // The same machine, its next request balanced to another instance.
    const onTwo = new NodeClient({ serverUrl: two.url, hostname: 'tablet', capVersion: 109, machineKey: onOne.machineKey, nodeKey: onOne.nodeKey });
    try {
      const first = await onOne.register();
      const id = first.AuthURL.split('/').pop()!;
      assert.match(id, /^[A-Za-z0-9_-]{8,64}$/, first.AuthURL);
      // The AuthURL's page, served by an instance that did not open the login.
      const page = await fetch(`${three.url}/register/${id}`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), new RegExp(`headway nodes register --key ${id}`));

      let settled = false;
      const waiting = onTwo.register({ followup: first.AuthURL }).finally(() => { settled = true; });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(settled, false, 'the follow-up on instance 2 waits for the admin');
      await three.state.approvePending(id, three.state.defaultTailnet, { userId: carol.id, keyExpiry: null }, admin);
      const done = await waiting;
      assert.equal(done.MachineAuthorized, true);
      assert.equal(done.AuthURL, '');
      assert.equal(done.Login.LoginName, 'carol');
      await onTwo.startMap();
      await onTwo.waitFor('a netmap through instance 2', (nm) => nm.self?.User === carol.id);
      // One node, known to every instance.
      for (const server of cluster.instances) {
        await waitUntil('the node on every instance', () => [...server.state.defaultTailnet.nodes()].filter((n) => n.hostname === 'tablet').length === 1);
      }
      // Approving again through instance 1 finds no login waiting.
      await assert.rejects(one.state.approvePending(id, one.state.defaultTailnet, { userId: carol.id, keyExpiry: null }, admin), /no login is waiting/);
    } finally {
      await onOne.close();
      await onTwo.close();
    }
  });

  it('delivers each webhook event once across the instances, retries included', async () => {
    const [one, two, three] = cluster.instances as [RunningServer, RunningServer, RunningServer];
    const url = await receiver.listen();
    receiver.failFirst = 2;
    await one.state.store.transaction((tx) => tx.webhooks.create({
      tailnetId: one.state.defaultTailnet.id, url, providerType: '', subscriptions: ['userCreated', 'nodeCreated', 'nodeDeleted', 'policyUpdate'], creator: 'test',
    }));
    // Every instance's dispatcher reads the endpoint list on its next poll.
    await new Promise((r) => setTimeout(r, 300));

    const made: string[] = [];
    for (const [i, server] of [one, two, three].entries()) {
      await server.state.defaultTailnet.createUser({ name: `hooked-${i}` }, admin);
      made.push(`userCreated:hooked-${i}`);
    }
    const key = await one.state.createPreAuthKey(one.state.defaultTailnet, { userId: null, reusable: true, ephemeral: false, tags: ['tag:ci'], expiresAt: null }, admin);
    await two.state.defaultTailnet.setPolicy(JSON.stringify({ tagOwners: { 'tag:ci': ['autogroup:admin'] }, acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] }), admin, { persist: true });
    made.push('policyUpdate');
    const devices: NodeClient[] = [];
    try {
      for (const [i, server] of [one, two, three].entries()) {
        const device = new NodeClient({ serverUrl: server.url, hostname: `hooked-box-${i}`, capVersion: 109 });
        devices.push(device);
        await device.loginWithAuthKey(key.secret);
        made.push(`nodeCreated:hooked-box-${i}`);
      }
      const boxOne = [...one.state.defaultTailnet.nodes()].find((n) => n.hostname === 'hooked-box-1')!;
      await waitUntil('instance 3 holds hooked-box-1', () => three.state.defaultTailnet.node(boxOne.id) !== undefined);
      await three.state.defaultTailnet.deleteNode(boxOne.id, admin);
      made.push('nodeDeleted:hooked-box-1');
    } finally {
      for (const device of devices) await device.close();
    }

    const label = (e: WebhookEvent) => {
      const subject = e.type === 'userCreated' ? e.data['user'] : e.type === 'policyUpdate' ? undefined : e.message.split(' ')[1];
      return subject === undefined ? e.type : `${e.type}:${subject}`;
    };
    await waitUntil('every event at the receiver', () => receiver.events.length >= made.length, 15_000);
    // Anything a second instance would send arrives within a few polls: give it time.
    await new Promise((r) => setTimeout(r, 1_500));
    const got = receiver.events.map(label).map((l) => l.replace(/@example\.com$/, '')).sort();
    assert.deepEqual(got, [...made].sort(), 'each event exactly once');
    // The two refused POSTs were retried, and nothing else was sent.
    assert.equal(receiver.posts, made.length + 2);
  });
});

describe('high availability: SSH check passes (two instances)', () => {
  it('honours on instance 2 a check passed through instance 1, within checkPeriod', async () => {
    // Each instance is its own server_url here, so the provider sends the browser back to the
    // instance that started the sign-in (test/e2e/ha-sign-in.test.ts shares one server_url).
    // The provider registers the instances' callbacks when it starts, so it starts again with
    // the cluster when a port was taken before an instance bound it.
    const { ports, idp, cluster } = await withFreePorts(2, async (ports) => {
      const idp = await startTestProvider({ redirectUris: () => ports.map((p) => `http://127.0.0.1:${p}/oidc/callback`), accounts: { ann: { email: 'ann@example.com' } } });
      try {
        const cluster = await startTestCluster(2, {
          config: { oidc: { issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret, scope: ['openid', 'profile', 'email'] } },
          perInstance: (i) => ({ listen_addr: `127.0.0.1:${ports[i]}`, server_url: `http://127.0.0.1:${ports[i]}` }),
        });
        return { ports, idp, cluster };
      } catch (err) {
        await idp.stop();
        throw err;
      }
    });
    const [one, two] = cluster.instances as [RunningServer, RunningServer];
    const laptop = new NodeClient({ serverUrl: one.url, hostname: 'ann-laptop', capVersion: 130 });
    const sshd = new NodeClient({ serverUrl: one.url, hostname: 'db', capVersion: 130 });
    const sshdViaTwo = new NodeClient({ serverUrl: two.url, hostname: 'db', capVersion: 130, machineKey: sshd.machineKey, nodeKey: sshd.nodeKey });
    try {
      await one.state.defaultTailnet.setPolicy(CHECK_POLICY, admin, { persist: true });
      const first = await laptop.register({});
      const followup = laptop.register({ followup: first.AuthURL });
      assert.equal((await new TestBrowser().signIn(first.AuthURL, 'ann')).status, 200);
      assert.equal((await followup).MachineAuthorized, true);
      const src = one.state.nodeByKey(laptop.nodePublicKey)!.node.id;
      const key = await one.state.createPreAuthKey(one.state.defaultTailnet, { userId: null, reusable: false, ephemeral: false, tags: ['tag:server'], expiresAt: null }, admin);
      await sshd.loginWithAuthKey(key.secret);
      const dst = one.state.nodeByKey(sshd.nodePublicKey)!.node.id;
      await waitUntil('instance 2 applied the policy and both nodes', async () => {
        const nodes = two.state.defaultTailnet;
        return nodes.node(src) !== undefined && nodes.node(dst) !== undefined && two.state.defaultTailnet.policyText?.includes('check') === true;
      });

      // Before any check, instance 2 asks for a sign-in too: the accept below is the shared pass.
      const unchecked = await fetchSshAction(sshdViaTwo, CHECK_URL, src, dst);
      assert.ok(unchecked.holdAndDelegate !== undefined && unchecked.accept === undefined, JSON.stringify(unchecked));

      // The check through instance 1: sign-in URL, ann signs in, the held follow-up accepts.
      const asked = await fetchSshAction(sshd, CHECK_URL, src, dst);
      const signIn = /visit: (\S+)/.exec(asked.message ?? '')?.[1];
      assert.ok(signIn?.startsWith(`http://127.0.0.1:${ports[0]}/`), asked.message);
      const held = fetchSshAction(sshd, asked.holdAndDelegate!, src, dst);
      assert.equal((await new TestBrowser().signIn(signIn!, 'ann')).status, 200);
      assert.equal((await held).accept, true);

      // The same SSH server, its next connection balanced to instance 2: accepted at once.
      const again = await fetchSshAction(sshdViaTwo, CHECK_URL, src, dst);
      assert.deepEqual([again.accept, again.message, again.holdAndDelegate], [true, undefined, undefined]);
    } finally {
      await laptop.close();
      await sshd.close();
      await sshdViaTwo.close();
      await cluster.cleanup();
      await idp.stop();
    }
  });
});
