// GET /api/v1/events: server-sent events fed by the tailnet's state events. A node's change
// (presence included) arrives as one `data:` line with the node; a member's stream carries only
// the member's own devices; a console session's stream ends when the session does.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { forEachDialect } from '../store/testing.js';
import { SESSION_COOKIE, WebSessions } from '../web-session/index.js';
import { addTestNode, startTestApi, type TestApi } from './testing.js';

interface Stream { events: Array<{ type: string; node?: { name: string } }>; ended: Promise<void>; close(): void; next(what: string): Promise<void> }

function openStream(api: TestApi, headers: Record<string, string>): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: Number(new URL(api.url).port), path: '/api/v1/events?tailnet=default', headers }, (res: IncomingMessage) => {
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      const events: Stream['events'] = [];
      const waiters: Array<() => void> = [];
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          if (block.startsWith('data: ')) events.push(JSON.parse(block.slice(6)) as Stream['events'][number]);
          waiters.splice(0).forEach((w) => w());
        }
      });
      const ended = new Promise<void>((done) => res.on('close', () => done()));
      resolve({
        events, ended,
        close: () => req.destroy(),
        next: (what) => new Promise<void>((done, fail) => {
          const timer = setTimeout(() => fail(new Error(`no event: ${what}`)), 5_000);
          waiters.push(() => { clearTimeout(timer); done(); });
        }),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

forEachDialect('live events (GET /events)', (open) => {
  let api: TestApi;
  let sessions: WebSessions;
  let cleanup: () => Promise<void>;
  const cookieFor = async (user?: string): Promise<string> => {
    const link = await sessions.createLoginLink('default', user ?? null, 60_000, { name: 'test' });
    return `${SESSION_COOKIE}=${(await sessions.redeemLoginLink(link.token, '127.0.0.1')).token}`;
  };

  before(async () => {
    const testStore = await open();
    api = await startTestApi(testStore);
    sessions = new WebSessions(api.state);
    const tailnet = api.state.requireTailnet('default');
    await tailnet.createUser({ name: 'alice' }, { name: 'test' });
    await tailnet.createUser({ name: 'bob' }, { name: 'test' });
    cleanup = async () => {
      await api.close();
      await testStore.cleanup();
    };
  });
  after(() => cleanup());

  it('sends each node change to an admin, and only their own nodes to a member', async () => {
    const tailnet = api.state.requireTailnet('default');
    const admin = await openStream(api, { cookie: await cookieFor() });
    const member = await openStream(api, { cookie: await cookieFor('bob') });
    try {
      const alice = [...tailnet.users()].find((u) => u.name === 'alice')!;
      const bob = [...tailnet.users()].find((u) => u.name === 'bob')!;
      const seen = admin.next('alice-laptop added');
      await addTestNode(tailnet, { hostname: 'alice-laptop', userId: alice.id });
      await seen;
      const bobSeen = member.next('bob-phone added');
      await addTestNode(tailnet, { hostname: 'bob-phone', userId: bob.id });
      await bobSeen;
      while (!admin.events.some((e) => e.node?.name === 'bob-phone')) await admin.next('bob-phone at the admin');
      assert.ok(admin.events.some((e) => e.type === 'node' && e.node?.name === 'alice-laptop'));
      assert.deepEqual(member.events.filter((e) => e.type === 'node').map((e) => e.node!.name), ['bob-phone']);
    } finally {
      admin.close();
      member.close();
    }
  });

  it('refuses a stream without credentials', async () => {
    const res = await api.request('GET', '/api/v1/events');
    assert.equal(res.status, 401);
  });
});
