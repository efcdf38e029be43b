// Request handling that does not depend on the database: validation messages, error mapping,
// body limits, request ids and the access log. Runs on SQLite only (the dialect changes nothing
// here); authentication and audit run on both dialects in their own files.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { openTestStore, type TestStore } from '../store/testing.js';
import { errorResponse } from './handler.js';
import { addTestNode, openTestLogin, startTestApi, TEST_ADMIN, type TestApi, type TestRequest, type TestResponse } from './testing.js';

interface ErrorBody {
  error: { code: string; message: string; request_id: string; field?: string };
}

describe('admin API requests', () => {
  let testStore: TestStore;
  let api: TestApi;

  before(async () => {
    testStore = await openTestStore('sqlite');
    api = await startTestApi(testStore, { bodyTimeoutMs: 300 });
  });
  after(async () => {
    await api.close();
    await testStore.cleanup();
  });

  const call = (method: string, path: string, options: TestRequest = {}): Promise<TestResponse> =>
    api.request(method, path, { transport: 'unix', ...options });

  function expectError(res: TestResponse, status: number, code: string, message?: string | RegExp): ErrorBody['error'] {
    assert.equal(res.status, status, res.text);
    const error = (res.json as ErrorBody).error;
    assert.equal(error.code, code);
    if (typeof message === 'string') assert.equal(error.message, message);
    else if (message) assert.match(error.message, message);
    assert.equal(error.request_id, res.headers['x-request-id']);
    assert.ok(!res.text.includes('    at '), 'no stack trace');
    return error;
  }

  describe('validation', () => {
    const cases: Array<{ name: string; method: string; path: string; options: TestRequest; field: string; message: string }> = [
      {
        name: 'a duration that is not one',
        method: 'POST', path: '/api/v1/preauthkeys', options: { body: { tags: ['tag:ci'], expiration: '2x' } },
        field: 'body.expiration', message: 'body.expiration: "2x" is not a duration (units: ms, s, m, h, d, w)',
      },
      {
        name: 'a zero duration',
        method: 'POST', path: '/api/v1/apikeys', options: { body: { expiration: '0' } },
        field: 'body.expiration', message: 'body.expiration: "0" is not a positive duration (want e.g. "24h", "90d")',
      },
      {
        name: 'a field of the wrong type',
        method: 'POST', path: '/api/v1/preauthkeys', options: { body: { tags: ['tag:ci'], reusable: 'yes' } },
        field: 'body.reusable', message: 'body.reusable: want true or false, got "yes"',
      },
      {
        name: 'a missing required field',
        method: 'POST', path: '/api/v1/users', options: { body: {} },
        field: 'body.name', message: 'body.name: required (want a string)',
      },
      {
        name: 'an unknown body field',
        method: 'POST', path: '/api/v1/users', options: { body: { name: 'x', mail: 'x@example.com' } },
        field: 'body.mail', message: 'body.mail: unknown field (allowed: name, display_name, email, role)',
      },
      {
        name: 'a malformed tag in a list',
        method: 'POST', path: '/api/v1/preauthkeys', options: { body: { tags: ['tag:ok', 'web'] } },
        field: 'body.tags[1]', message: 'body.tags[1]: "web" is not a tag (want tag:<letter>[letters, digits, -])',
      },
      {
        name: 'a key with neither user nor tags',
        method: 'POST', path: '/api/v1/preauthkeys', options: { body: { reusable: true } },
        field: 'body', message: 'body: give user or tags (a key registers nodes for a user or as tagged nodes)',
      },
      {
        name: 'a route with host bits',
        method: 'POST', path: '/api/v1/nodes/1/routes/approve', options: { body: { routes: ['10.0.0.1/24'] } },
        field: 'body.routes[0]', message: 'body.routes[0]: "10.0.0.1/24" is not a route',
      },
      {
        name: 'an unknown query parameter (a typo must not fall back to the default tailnet)',
        method: 'GET', path: '/api/v1/users?tailent=lab', options: {},
        field: 'query.tailent', message: 'query.tailent: unknown parameter (allowed: tailnet)',
      },
      {
        name: 'a query parameter given twice',
        method: 'GET', path: '/api/v1/users?tailnet=a&tailnet=b', options: {},
        field: 'query.tailnet', message: 'query.tailnet: given more than once',
      },
      {
        name: 'a limit out of range',
        method: 'GET', path: '/api/v1/audit?limit=0', options: {},
        field: 'query.limit', message: 'query.limit: want a whole number from 1 to 10000, got "0"',
      },
      {
        name: 'an invalid tailnet name',
        method: 'POST', path: '/api/v1/tailnets', options: { body: { name: 'Lab Net' } },
        field: 'body.name', message: 'body.name: "Lab Net" is not a DNS label (lower-case letters, digits and inner dashes, at most 63)',
      },
      {
        name: 'a body that is not an object',
        method: 'POST', path: '/api/v1/users', options: { body: ['alice'] },
        field: 'body', message: 'body: want a JSON object, got a list',
      },
      {
        name: 'an empty user update',
        method: 'PATCH', path: '/api/v1/users/1', options: { body: {} },
        field: 'body', message: 'body: nothing to change (give name, display_name, email or role)',
      },
      {
        name: 'a role that cannot be given',
        method: 'PATCH', path: '/api/v1/users/1', options: { body: { role: 'owner' } },
        field: 'body.role', message: 'body.role: ',
      },
      {
        name: 'a bad percent-encoding in the path',
        method: 'GET', path: '/api/v1/nodes/%E0%A4%A', options: {},
        field: 'params.node', message: 'params.node: malformed percent-encoding',
      },
    ];
    for (const c of cases) {
      it(`answers 400 naming the field for ${c.name}`, async () => {
        const error = expectError(await call(c.method, c.path, c.options), 400, 'HW_API_INVALID_REQUEST');
        assert.equal(error.field, c.field);
        assert.ok(error.message.startsWith(c.message), `${error.message}\n  does not start with\n${c.message}`);
      });
    }

    it('answers 400 for a body that is not JSON', async () => {
      const res = await call('POST', '/api/v1/users', { rawBody: '{"name": "x",', headers: { 'content-type': 'application/json' } });
      expectError(res, 400, 'HW_API_INVALID_JSON', /^request body: not valid JSON/);
    });

    it('answers 415 for a body that is not declared as JSON', async () => {
      const res = await call('POST', '/api/v1/users', { rawBody: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expectError(res, 415, 'HW_API_UNSUPPORTED_MEDIA_TYPE', 'request body: Content-Type "application/x-www-form-urlencoded"; want application/json');
    });

    it('answers 413 for a body over 1 MiB and keeps serving', async () => {
      const res = await call('POST', '/api/v1/users', { body: { name: 'x'.repeat(2 * 1024 * 1024) } });
      expectError(res, 413, 'HW_API_BODY_TOO_LARGE');
      assert.equal((await call('GET', '/api/v1/users')).status, 200);
    });

    it('answers 413 for a chunked body that grows over 1 MiB', async () => {
      const res = await call('POST', '/api/v1/users', {
        rawBody: Buffer.alloc(1024 * 1024 + 10, 0x20),
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      expectError(res, 413, 'HW_API_BODY_TOO_LARGE');
      assert.equal((await call('GET', '/api/v1/users')).status, 200);
    });

    it('answers 408 when a body stops arriving', async () => {
      const answer = await new Promise<string>((resolve, reject) => {
        let text = '';
        const socket = connect(api.socketPath, () => {
          socket.write('POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{"na');
        });
        socket.on('data', (chunk: Buffer) => { text += chunk.toString('utf8'); });
        socket.on('error', reject);
        socket.on('close', () => resolve(text));
      });
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.match(answer, /"code":"HW_API_BODY_TIMEOUT"/);
    });

    it('survives a connection that sends garbage and hangs up', async () => {
      await new Promise<void>((resolve, reject) => {
        const socket = connect(api.socketPath, () => {
          socket.end('POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{"na');
        });
        socket.on('error', reject);
        socket.on('close', () => resolve());
        socket.resume();
      });
      assert.equal((await call('GET', '/api/v1/users')).status, 200);
    });
  });

  describe('routing', () => {
    it('answers 404 for an unknown endpoint', async () => {
      expectError(await call('GET', '/api/v1/widgets'), 404, 'HW_API_ROUTE_NOT_FOUND', /^GET \/api\/v1\/widgets: no such endpoint/);
    });

    it('answers 405 with Allow for a known path and the wrong method', async () => {
      const res = await call('PUT', '/api/v1/users');
      expectError(res, 405, 'HW_API_METHOD_NOT_ALLOWED');
      assert.equal(res.headers['allow'], 'GET, POST');
    });

    it('leaves paths outside /api/v1 to the rest of the server', async () => {
      for (const path of ['/', '/api/v10/users', '/api/v1users', '/metrics', '/ts2021']) {
        const res = await call('GET', path);
        assert.equal(res.status, 418, path);
        assert.equal(res.text, 'not the admin API');
      }
    });
  });

  describe('error mapping', () => {
    it('maps missing things to 404 and conflicts to 409', async () => {
      const tailnet = api.state.defaultTailnet;
      const owner = await tailnet.createUser({ name: 'owner' }, TEST_ADMIN);
      await addTestNode(tailnet, { hostname: 'db', userId: owner.id });
      await addTestNode(tailnet, { hostname: 'web', userId: owner.id });
      expectError(await call('GET', '/api/v1/users?tailnet=nope'), 404, 'HW_STATE_TAILNET_NOT_FOUND', 'tailnet "nope" not found');
      expectError(await call('DELETE', '/api/v1/users/nobody'), 404, 'HW_STATE_USER_NOT_FOUND', 'user "nobody" not found in tailnet "default"');
      expectError(await call('GET', '/api/v1/nodes/nothing'), 404, 'HW_STATE_NODE_NOT_FOUND');
      expectError(await call('POST', '/api/v1/preauthkeys/zzzzzzzzzzzz/expire'), 404, 'HW_STATE_PREAUTHKEY_NOT_FOUND');
      expectError(await call('POST', '/api/v1/apikeys/zzzzzzzzzzzz/expire'), 404, 'HW_STATE_APIKEY_NOT_FOUND');
      expectError(await call('POST', '/api/v1/nodes/register', { body: { key: 'no-such-login', user: 'owner' } }), 404, 'HW_STATE_PENDING_NOT_FOUND');
      expectError(await call('POST', '/api/v1/users', { body: { name: 'owner' } }), 409, 'HW_STATE_USER_EXISTS');
      expectError(await call('DELETE', '/api/v1/users/owner'), 409, 'HW_STATE_USER_HAS_NODES');
      expectError(await call('POST', '/api/v1/nodes/web/rename', { body: { name: 'db' } }), 409, 'HW_STATE_NODE_NAME_TAKEN');
      expectError(await call('POST', '/api/v1/nodes/web/rename', { body: { name: 'Not A Label' } }), 400, 'HW_STATE_NODE_NAME_INVALID');
      expectError(await call('DELETE', '/api/v1/tailnets/default'), 409, 'HW_STATE_TAILNET_DEFAULT');
      expectError(await call('POST', '/api/v1/tailnets', { body: { name: 'default' } }), 409, 'HW_STATE_TAILNET_EXISTS');
      const tagged = await addTestNode(tailnet, { hostname: 'ci', tags: ['tag:ci'] });
      expectError(await call('POST', `/api/v1/nodes/${tagged.id}/tags`, { body: { tags: [] } }), 400, 'HW_STATE_NODE_OWNER_INVALID');
    });

    it('hides the message of an unexpected error behind the request id', () => {
      const { status, body } = errorResponse(new Error('SELECT secret FROM keys'), 'req-1');
      assert.equal(status, 500);
      assert.deepEqual(body, { error: { code: 'HW_API_INTERNAL', message: 'internal error; the server log has the details under request id req-1', request_id: 'req-1' } });
    });
  });

  describe('request ids and the access log', () => {
    it('echoes a request id it is given and logs one line per request', async () => {
      const res = await call('GET', '/api/v1/users', { headers: { 'x-request-id': 'trace-abc.123' } });
      assert.equal(res.headers['x-request-id'], 'trace-abc.123');
      const line = api.logs.find((l) => l['request_id'] === 'trace-abc.123');
      assert.ok(line, 'logged');
      assert.equal(line['msg'], 'admin request');
      assert.equal(line['method'], 'GET');
      assert.equal(line['path'], '/api/v1/users');
      assert.equal(line['status'], 200);
      assert.equal(typeof line['duration_ms'], 'number');
      assert.equal(line['actor'], 'unix-socket');
      assert.equal(api.logs.filter((l) => l['request_id'] === 'trace-abc.123').length, 1);
    });

    it('generates a request id when none or a strange one is given', async () => {
      for (const headers of [{}, { 'x-request-id': 'has spaces and "quotes"' }] as Array<Record<string, string>>) {
        const res = await call('GET', '/api/v1/users', { headers });
        assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
      }
    });

    it('never logs a key pasted into a path', async () => {
      const secret = `hwkey-auth-${'P'.repeat(12)}-${'s'.repeat(40)}`;
      await call('POST', `/api/v1/preauthkeys/${secret}/expire`);
      const line = api.logs.find((l) => String(l['path']).includes('PPPPPPPPPPPP'));
      assert.ok(line);
      assert.ok(!JSON.stringify(api.logs).includes('ssssssssss'));
    });
  });

  describe('nodes register', () => {
    it('approves a waiting login for a user, given the whole URL', async () => {
      const tailnet = api.state.defaultTailnet;
      await tailnet.createUser({ name: 'newcomer' }, TEST_ADMIN);
      const login = await openTestLogin(api.state, 'fresh-laptop');
      const waiting = api.state.pending.wait(login.id);
      const res = await call('POST', '/api/v1/nodes/register', { body: { key: `http://127.0.0.1:8080/register/${login.id}`, user: 'newcomer' } });
      assert.equal(res.status, 201, res.text);
      const node = res.json as { name: string; user: string; tags: string[]; key_expiry: string | null };
      assert.equal(node.name, 'fresh-laptop');
      assert.equal(node.user, 'newcomer');
      const outcome = await waiting;
      assert.ok(outcome !== 'aborted' && outcome.kind === 'approved', 'the waiting client is released');
    });
  });
});
