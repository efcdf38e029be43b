// Webhooks end to end: a receiver started by the test on 127.0.0.1 verifies every
// Tailscale-Webhook-Signature, fails on purpose to see the retries, and still gets the events
// that were queued before a server restart after it. Endpoints are managed through /api/v2.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { createApiHandler } from '../../src/api/index.js';
import { Curve25519PrivateKey } from '../../src/key/index.js';
import { startTestServer, type TestServer } from '../../src/server/testing.js';
import { verifySignature, type WebhookEvent } from '../../src/webhooks/index.js';
import { selectedDialects } from '../../src/store/testing.js';

const admin = { name: 'test' };

interface Received { events: WebhookEvent[]; signature: string; body: string; verified: boolean }

class Receiver {
  readonly received: Received[] = [];
  attempts = 0;
  /** Answer 503 to this many more requests. */
  failNext = 0;
  secret = '';
  readonly #server: Server;
  #waiters: Array<() => void> = [];

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.attempts++;
        if (this.failNext > 0) {
          this.failNext--;
          res.writeHead(503).end('try later');
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        const signature = String(req.headers['tailscale-webhook-signature'] ?? '');
        this.received.push({ events: JSON.parse(body) as WebhookEvent[], signature, body, verified: verifySignature(this.secret, body, signature) });
        res.writeHead(200).end();
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
  }

  events(): WebhookEvent[] {
    return this.received.flatMap((r) => r.events);
  }

  async waitFor(what: string, predicate: (events: WebhookEvent[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.events())) {
      if (Date.now() > deadline) throw new Error(`receiver: timed out waiting for ${what}; got ${JSON.stringify(this.events().map((e) => e.type))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

for (const dialect of selectedDialects()) describe(`webhooks on ${dialect}`, () => {
  let ts: TestServer;
  let receiver: Receiver;
  let hookUrl: string;
  let apiKey: string;

  before(async () => {
    receiver = new Receiver();
    hookUrl = await receiver.listen();
    ts = await startTestServer({
      dialect,
      api: (deps) => createApiHandler(deps),
      start: { webhooks: { pollIntervalMs: 40, retryBaseMs: 60, retryMaxMs: 200, keyExpiryScanMs: 100 } },
    });
    apiKey = (await ts.server.state.createApiKey(null, admin)).secret;
  });
  after(async () => {
    await ts.cleanup();
    await receiver.close();
  });

  async function v2(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`${ts.server.url}/api/v2${path}`, {
      method,
      headers: { Authorization: `Basic ${Buffer.from(`${apiKey}:`).toString('base64')}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : { Accept: 'application/json' }) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text === '' ? {} : JSON.parse(text) as Record<string, unknown> };
  }

  it('signs Tailscale\'s events, retries a failing receiver, and delivers what was queued before a restart', async () => {
    const created = await v2('POST', '/tailnet/-/webhooks', { endpointUrl: hookUrl, providerType: '', subscriptions: ['categoryTailnetManagement'] });
    assert.equal(created.status, 200, JSON.stringify(created.json));
    receiver.secret = String(created.json['secret']);
    assert.match(receiver.secret, /^hwkey-webhook-/);
    const endpointId = String(created.json['endpointId']);
    const listed = await v2('GET', '/tailnet/-/webhooks');
    assert.equal((listed.json['webhooks'] as Array<Record<string, unknown>>)[0]!['secret'], undefined, 'the secret is shown once');
    await new Promise((r) => setTimeout(r, 150)); // the dispatcher picks up the new endpoint on its next poll

    // A receiver that fails twice still gets the event, signed.
    receiver.failNext = 2;
    const before = receiver.attempts;
    await ts.defaultTailnet.createUser({ name: 'alice', email: 'alice@example.com' }, admin);
    await receiver.waitFor('userCreated alice', (events) => events.some((e) => e.type === 'userCreated' && e.data['user'] === 'alice@example.com'));
    assert.ok(receiver.attempts - before >= 3, `retried: ${receiver.attempts - before} attempts`);
    const delivery = receiver.received.find((r) => r.events.some((e) => e.type === 'userCreated'))!;
    assert.equal(delivery.verified, true, `signature ${delivery.signature} verifies with the secret`);
    assert.match(delivery.signature, /^t=\d+,v1=[0-9a-f]{64}$/);
    const event = delivery.events[0]!;
    assert.equal(event.version, 1);
    assert.equal(event.tailnet, 'default');
    assert.ok(!Number.isNaN(Date.parse(event.timestamp)));
    assert.equal(verifySignature('hwkey-webhook-not-the-secret', delivery.body, delivery.signature), false);

    // A node whose key expires within a day: nodeCreated, then one nodeKeyExpiringInOneDay.
    const node = await ts.defaultTailnet.addNode({
      machineKey: Curve25519PrivateKey.generate().publicKey('machine'), nodeKey: Curve25519PrivateKey.generate().publicKey('node'),
      hostinfo: { Hostname: 'soon' }, userId: null, tags: ['tag:soon'], keyExpiry: new Date(Date.now() + 3_600_000), ephemeral: false, registerMethod: 'authkey',
    }, admin);
    await receiver.waitFor('nodeCreated and the expiry warning', (events) =>
      events.some((e) => e.type === 'nodeCreated' && e.data['nodeID'] === node.stableId) && events.some((e) => e.type === 'nodeKeyExpiringInOneDay' && e.data['nodeID'] === node.stableId));
    await new Promise((r) => setTimeout(r, 300)); // three more scans
    assert.equal(receiver.events().filter((e) => e.type === 'nodeKeyExpiringInOneDay').length, 1, 'warned once');

    // Queued while the receiver is down, then the server restarts: delivered after it.
    receiver.failNext = 1_000_000;
    await ts.defaultTailnet.createUser({ name: 'bob', email: 'bob@example.com' }, admin);
    await ts.defaultTailnet.deleteNode(node.id, admin);
    const failedBefore = receiver.attempts;
    while (receiver.attempts === failedBefore) await new Promise((r) => setTimeout(r, 20));
    await ts.restart();
    receiver.failNext = 0;
    await receiver.waitFor('the events queued before the restart', (events) =>
      events.some((e) => e.type === 'userCreated' && e.data['user'] === 'bob@example.com') && events.some((e) => e.type === 'nodeDeleted' && e.data['nodeID'] === node.stableId));
    assert.ok(receiver.received.every((r) => r.verified), 'every delivery is signed');

    // Managed through the API: test event, narrower subscriptions, rotation, deletion.
    assert.equal((await v2('POST', `/webhooks/${endpointId}/test`)).status, 202);
    await receiver.waitFor('the test event', (events) => events.some((e) => e.type === 'test'));
    const patched = await v2('PATCH', `/webhooks/${endpointId}`, { subscriptions: ['policyUpdate'] });
    assert.deepEqual(patched.json['subscriptions'], ['policyUpdate']);
    const rotated = await v2('POST', `/webhooks/${endpointId}/rotate`);
    assert.notEqual(rotated.json['secret'], receiver.secret);
    assert.equal((await v2('POST', '/tailnet/-/webhooks', { endpointUrl: 'ftp://nope', subscriptions: ['nodeCreated'] })).status, 400);
    assert.equal((await v2('POST', '/tailnet/-/webhooks', { endpointUrl: hookUrl, subscriptions: ['nodeExploded'] })).status, 400);
    assert.equal((await v2('DELETE', `/webhooks/${endpointId}`)).status, 200);
    assert.equal((await v2('GET', `/webhooks/${endpointId}`)).status, 404);
    const audit = await ts.server.state.listAudit({});
    assert.ok(['webhook.create', 'webhook.update', 'webhook.rotate', 'webhook.delete'].every((action) => audit.some((e) => e.action === action)));
  });

  it('is managed from the CLI over the admin socket', async () => {
    const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
    const configPath = join(ts.dataDir, 'cli.yaml');
    await writeFile(configPath, `data_dir: ${JSON.stringify(ts.dataDir)}\nunix_socket: ${JSON.stringify(ts.server.socketPath)}\n`);
    const cli = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HEADWAY_')) env[k] = v;
      execFile(process.execPath, [bin, '--config', configPath, ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      });
    });
    const created = await cli(['webhooks', 'create', '--url', hookUrl, '--events', 'nodeCreated,policyUpdate']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /signing secret \(shown once\): hwkey-webhook-/);
    const id = /webhook (w\w+) created/.exec(created.stdout)![1]!;
    const listed = await cli(['--output', 'json', 'webhooks', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    const hooks = JSON.parse(listed.stdout) as Array<{ endpointId: string; subscriptions: string[]; secret?: string }>;
    assert.deepEqual(hooks.find((h) => h.endpointId === id)?.subscriptions, ['nodeCreated', 'policyUpdate']);
    assert.ok(hooks.every((h) => h.secret === undefined));
    assert.equal((await cli(['webhooks', 'test', id])).code, 0);
    const bad = await cli(['webhooks', 'create', '--url', hookUrl, '--events', 'nodeExploded']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: body\.subscriptions\[0\]: .*\(HW_APIV2_BAD_REQUEST\)\n$/);
    const deleted = await cli(['webhooks', 'delete', id]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((await cli(['webhooks', 'delete', id])).code, 1);
  });
});
