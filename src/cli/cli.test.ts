// Every CLI command end to end: the real bin (`node dist/src/cli/main.js`) spawned as a child
// process against a real server (startServer with the admin API mounted), over its unix socket
// (no key) and over TCP with an API key. Checks the exit status, what is printed, and what
// changed on the server. `serve` itself is started and stopped as its own child process.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  ApiKeyJson, AuditEntryJson, NewApiKeyJson, NewPreAuthKeyJson, NodeJson, NodeRoutesJson, PolicyCheckJson, PolicyJson, PreAuthKeyJson, TailnetJson,
  UserJson,
} from '../api/index.js';
import { createApiHandler } from '../api/index.js';
import { addTestNode, openTestLogin, sendTestRequest, TEST_ADMIN, type TestRequest, type TestResponse } from '../api/testing.js';
import { startTestServer, type TestServer } from '../server/testing.js';
import type { UserId } from '../model/index.js';
import type { ServerState, TailnetState } from '../state/index.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), 'main.js');

const POLICY = `// who may reach what
{
  "groups": { "group:eng": ["alice@"] },
  "tagOwners": { "tag:web": ["group:eng"] },
  "acls": [
    { "action": "accept", "src": ["group:eng"], "dst": ["tag:web:443"] }, // trailing comma kept
  ],
  "tests": [{ "src": "alice@", "accept": ["tag:web:443"], "deny": ["tag:web:22"] }],
}
`;

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment of a user's shell, minus any Headway settings of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HEADWAY_')) env[k] = v;
  return { ...env, NO_COLOR: '1', ...extra };
}

function run(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [BIN, ...args], { env: cleanEnv(options.env), timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    else child.stdin!.end();
  });
}

/** The parts of a running server the CLI tests look at. */
interface ServerUnderTest {
  readonly state: ServerState;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** A scratch directory (the server's data directory). */
  readonly dir: string;
  /** A config file naming the server's admin socket, for --config. */
  readonly configPath: string;
  request(method: string, path: string, options?: TestRequest): Promise<TestResponse>;
}

/** `headway serve` as a child process; resolves once it logs where it listens. */
async function startServe(config: string): Promise<{ url: string; stop(signal: NodeJS.Signals): Promise<{ code: number | null; log: string }> }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', config], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      log += chunk.toString('utf8');
      const found = /"listen":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log);
      if (found) resolve(found[1]!);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`serve exited with ${code} before listening:\n${log}`)));
  });
  return {
    url,
    async stop(signal) {
      child.kill(signal);
      const code = await exited;
      return { code, log };
    },
  };
}

describe('headway CLI', () => {
  let harness: TestServer;
  let api: ServerUnderTest;
  /** Runs a command over the unix socket named in the test server's config. */
  let cli: (...args: string[]) => Promise<RunResult>;

  before(async () => {
    // The real server (startServer) with the real admin API mounted on TCP and the unix socket.
    harness = await startTestServer({ api: (deps) => createApiHandler({ ...deps, validateResponses: true }) });
    const { server, dataDir } = harness;
    const configPath = join(dataDir, 'cli.yaml');
    await writeFile(configPath, `data_dir: ${JSON.stringify(dataDir)}\nunix_socket: ${JSON.stringify(server.socketPath)}\n`);
    api = {
      state: server.state,
      url: server.url,
      dir: dataDir,
      configPath,
      request: (method, path, options) => sendTestRequest({ url: server.url, socketPath: server.socketPath }, method, path, options),
    };
    cli = (...args) => run(['--config', api.configPath, ...args]);
  });
  after(() => harness.cleanup());

  async function json<T>(...args: string[]): Promise<T> {
    const result = await cli(...args, '--output', 'json');
    assert.equal(result.code, 0, `headway ${args.join(' ')}: ${result.stderr}`);
    assert.equal(result.stderr, '');
    return JSON.parse(result.stdout) as T;
  }

  async function table(...args: string[]): Promise<string> {
    const result = await cli(...args);
    assert.equal(result.code, 0, `headway ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  }

  async function apiGet<T>(path: string): Promise<T> {
    const res = await api.request('GET', path, { transport: 'unix' });
    assert.equal(res.status, 200);
    return res.json as T;
  }

  describe('commands', { concurrency: true }, () => {
    // Each test works in its own tailnet, so the groups run side by side.
    async function tailnetFor(name: string): Promise<{ t: string[]; tailnet: TailnetState; alice: UserId }> {
      const tailnet = await api.state.createTailnet(name, TEST_ADMIN);
      const alice = await tailnet.createUser({ name: 'alice' }, TEST_ADMIN);
      return { t: ['--tailnet', name], tailnet, alice: alice.id };
    }

    it('tailnets create|list|delete', async () => {
      const [created, createdText] = await Promise.all([json<TailnetJson>('tailnets', 'create', 'lab'), table('tailnets', 'create', 'staging')]);
      assert.equal(created.name, 'lab');
      assert.match(createdText, /^created tailnet "staging" \(id \d+\)\n$/);
      const [listed, text] = await Promise.all([json<TailnetJson[]>('tailnets', 'list'), table('tailnets', 'list')]);
      const names = listed.map((x) => x.name);
      assert.ok(names.includes('default') && names.includes('lab') && names.includes('staging'));
      assert.ok(listed.every((x) => typeof x.id === 'number' && typeof x.user_count === 'number' && typeof x.created_at === 'string'));
      assert.match(text, /^ID +NAME +USERS +NODES +APPROVAL +CREATED\n/);
      assert.match(text, /\n\d+ +lab +0 +0 +off +\d{4}-/);
      assert.equal((await json<TailnetJson>('tailnets', 'set', 'lab', '--device-approval', 'on')).settings.device_approval, true);
      assert.equal(api.state.tailnetByName('lab')?.deviceApproval, true);
      assert.match(await table('tailnets', 'set', 'lab', '--device-approval', 'off'), /^tailnet "lab" .*\n  auto-update: off\n  device approval: off\n$/);
      const bad = await cli('tailnets', 'set', 'lab', '--device-approval', 'maybe');
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--device-approval: want on or off, got "maybe"/);
      assert.equal((await json<TailnetJson>('tailnets', 'delete', 'staging')).name, 'staging');
      assert.equal(api.state.tailnetByName('staging'), undefined);
    });

    it('users create|list|rename|delete', async () => {
      const t = ['--tailnet', 'users-t'];
      await api.state.createTailnet('users-t', TEST_ADMIN);
      const [alice, bobText] = await Promise.all([
        json<UserJson>('users', 'create', 'alice', '--email', 'alice@example.com', '--display-name', 'Alice', ...t),
        table('users', 'create', 'bob', ...t),
      ]);
      assert.deepEqual({ name: alice.name, email: alice.email, display_name: alice.display_name }, { name: 'alice', email: 'alice@example.com', display_name: 'Alice' });
      assert.match(bobText, /^created user "bob" \(id \d+\)\n$/);
      const [listed, before, text] = await Promise.all([
        json<UserJson[]>('-t', 'users-t', 'users', 'list'),
        apiGet<{ users: UserJson[] }>('/api/v1/users?tailnet=users-t'),
        table('users', 'list', ...t),
      ]);
      assert.deepEqual(listed.map((u) => u.name).sort(), ['alice', 'bob'], 'global option before the command');
      assert.deepEqual(listed, before.users, 'same objects as the API');
      assert.match(text, /^ID +NAME +DISPLAY NAME +EMAIL +ROLE +CREATED\n/);
      assert.match(text, /\n\d+ +alice +Alice +alice@example.com/);
      assert.equal((await json<UserJson>('users', 'rename', 'bob', 'robert', ...t)).name, 'robert');
      assert.equal(alice.role, 'member', 'users are members unless told otherwise');
      assert.equal((await json<UserJson>('users', 'set-role', 'alice', 'admin', ...t)).role, 'admin');
      assert.equal(api.state.tailnetByName('users-t')!.userByName('alice')!.role, 'admin');
      const refused = await cli('users', 'set-role', 'alice', 'owner', ...t);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /^error: <role>: .*admin/, 'owner cannot be given; the error names the argument and the choices');
      assert.equal(api.state.tailnetByName('users-t')!.userByName('alice')!.role, 'admin', 'a refused change changes nothing');
      assert.match(await table('users', 'delete', 'robert', ...t), /^deleted user "robert"/);
      assert.equal(api.state.tailnetByName('users-t')!.userByName('robert'), undefined);
    });

    it('nodes list|show|rename|tag|expire|move|delete|register', async () => {
      const { t, tailnet, alice } = await tailnetFor('nodes-t');
      await tailnet.createUser({ name: 'carol' }, TEST_ADMIN);
      const laptop = await addTestNode(tailnet, { hostname: 'laptop', userId: alice });
      await addTestNode(tailnet, { hostname: 'spare', userId: alice });

      const [listed, before, text, none, shown, details] = await Promise.all([
        json<NodeJson[]>('nodes', 'list', ...t),
        apiGet<{ nodes: NodeJson[] }>('/api/v1/nodes?tailnet=nodes-t'),
        table('nodes', 'list', ...t),
        json<NodeJson[]>('nodes', 'list', '--user', 'carol', ...t),
        json<NodeJson>('nodes', 'show', 'laptop', ...t),
        table('nodes', 'show', String(laptop.id), ...t),
      ]);
      assert.deepEqual(listed, before.nodes, 'same objects as the API');
      assert.match(text, /^ID +NAME +HOSTNAME +USER +TAGS +IPV4 +IPV6 +ONLINE +LAST SEEN +EXPIRES\n/);
      assert.ok(text.includes(laptop.ipv4!));
      assert.deepEqual(none, []);
      assert.equal(shown.id, laptop.id);
      assert.match(details, /^id: +\d+\nname: +laptop\n/);
      assert.match(details, /\nnode key: +nodekey:[0-9a-f]{64}\n/);

      assert.equal((await json<NodeJson>('nodes', 'rename', 'laptop', 'work-laptop', ...t)).name, 'work-laptop');
      assert.deepEqual((await json<NodeJson>('nodes', 'tag', 'work-laptop', '--tags', 'tag:web, tag:prod', ...t)).tags, ['tag:prod', 'tag:web']);
      assert.match(await table('nodes', 'tag', 'work-laptop', '--tags', '', ...t), /now has tags: -\n$/);
      const [moved, deleted] = await Promise.all([
        json<NodeJson>('nodes', 'move', 'work-laptop', '--user', 'carol', ...t),
        json<NodeJson>('nodes', 'delete', 'spare', ...t),
      ]);
      assert.equal(moved.user, 'carol');
      assert.equal(deleted.name, 'spare');
      assert.equal(tailnet.nodeByGivenName('spare'), undefined);
      assert.equal((await json<NodeJson>('nodes', 'expire', 'work-laptop', '--at', '2099-01-01T00:00:00Z', ...t)).key_expiry, '2099-01-01T00:00:00.000Z');
      assert.match(await table('nodes', 'expire', 'work-laptop', '--never', ...t), /no longer expires\n$/);
      assert.equal((await json<NodeJson>('nodes', 'expire', 'work-laptop', ...t)).expired, true);
      const waiting = await addTestNode(tailnet, { hostname: 'waiting', userId: alice, approved: false });
      assert.match(await table('nodes', 'show', 'waiting', ...t), /\napproved: +no \(waits for: headway nodes approve\)\n/);
      const approvedNode = await json<NodeJson>('nodes', 'approve', 'waiting', ...t);
      assert.equal(approvedNode.approved, true);
      assert.equal(tailnet.node(waiting.id)?.approved, true);

      const login = await openTestLogin(api.state, 'new-box');
      const taggedLogin = await openTestLogin(api.state, 'ci-box');
      const [registered, taggedText] = await Promise.all([
        json<NodeJson>('nodes', 'register', '--key', login.id, '--user', 'alice', ...t),
        table('nodes', 'register', '--key', `https://vpn.example.com/register/${taggedLogin.id}`, '--tags', 'tag:ci', ...t),
      ]);
      assert.equal(registered.name, 'new-box');
      assert.equal(registered.user, 'alice');
      assert.match(taggedText, /^registered node \d+ "ci-box" \(100\./);
    });

    it('nodes routes list|approve', async () => {
      const { t, tailnet, alice } = await tailnetFor('routes-t');
      await addTestNode(tailnet, { hostname: 'router', userId: alice, routes: ['10.20.0.0/16', '0.0.0.0/0', '::/0'] });
      await addTestNode(tailnet, { hostname: 'plain', userId: alice });
      const listed = await json<NodeRoutesJson[]>('nodes', 'routes', 'list', ...t);
      assert.deepEqual(listed, (await apiGet<{ routes: NodeRoutesJson[] }>('/api/v1/routes?tailnet=routes-t')).routes);
      assert.deepEqual(listed.map((r) => r.node), ['router']);
      const approved = await json<NodeRoutesJson>('nodes', 'routes', 'approve', 'router', '--routes', '10.20.0.0/16,0.0.0.0/0,::/0', ...t);
      assert.deepEqual(approved.approved_routes, ['0.0.0.0/0', '10.20.0.0/16', '::/0']);
      const one = await table('nodes', 'routes', 'list', 'router', ...t);
      assert.match(one, /^NODE ID +NODE +ADVERTISED +APPROVED\n\d+ +router +0\.0\.0\.0\/0,10\.20\.0\.0\/16,::\/0 +0\.0\.0\.0\/0,10\.20\.0\.0\/16,::\/0\n$/);
      assert.deepEqual((await json<NodeRoutesJson>('nodes', 'routes', 'approve', 'router', '--routes', '', ...t)).approved_routes, []);
    });

    it('preauthkeys create|list|expire', async () => {
      const { t } = await tailnetFor('keys-t');
      const [created, plain] = await Promise.all([
        json<NewPreAuthKeyJson>('preauthkeys', 'create', '--user', 'alice', '--reusable', '--ephemeral', '--expiration', '24h', '--tags', 'tag:a,tag:b', ...t),
        table('preauthkeys', 'create', '--user', 'alice', ...t),
      ]);
      assert.match(created.key, /^hwkey-auth-/, 'the new key is printed in the `key` field');
      assert.equal(created.reusable, true);
      assert.equal(created.ephemeral, true);
      assert.equal(created.pre_approved, false);
      assert.deepEqual(created.tags, ['tag:a', 'tag:b']);
      assert.equal((await api.state.findPreAuthKey(created.key))?.id, created.id);
      assert.match(plain, /^hwkey-auth-[0-9A-Za-z]{12}-[0-9A-Za-z]{40}\n$/, 'table output is the key alone');

      const [listed, before, text] = await Promise.all([
        json<PreAuthKeyJson[]>('preauthkeys', 'list', ...t),
        apiGet<{ preauthkeys: PreAuthKeyJson[] }>('/api/v1/preauthkeys?tailnet=keys-t'),
        table('preauthkeys', 'list', '--user', 'alice', ...t),
      ]);
      assert.deepEqual(listed, before.preauthkeys);
      assert.equal(listed.length, 2);
      assert.ok(listed.every((k) => !('key' in k)));
      assert.match(text, /^ID +PREFIX +USER +TAGS +REUSABLE +EPHEMERAL +USED +EXPIRES +STATUS\n/);
      assert.ok(!text.includes(created.key), 'secrets are never listed');
      const other = listed.find((k) => k.id !== created.id)!;
      const [expired, expiredText] = await Promise.all([
        json<PreAuthKeyJson>('preauthkeys', 'expire', created.prefix, ...t),
        table('preauthkeys', 'expire', String(other.id), ...t),
      ]);
      assert.equal(expired.expired, true);
      assert.match(expiredText, /^expired pre-auth key \d+/);
      assert.equal((await json<NewPreAuthKeyJson>('preauthkeys', 'create', '--user', 'alice', '--pre-approved', ...t)).pre_approved, true);
    });

    it('apikeys create|list|expire, and commands over TCP with --server/--api-key or the environment', async () => {
      const [created, keyText] = await Promise.all([json<NewApiKeyJson>('apikeys', 'create', '--expiration', '30d'), table('apikeys', 'create')]);
      assert.match(created.key, /^hwk_[0-9A-Za-z]{12}_[0-9A-Za-z]{40}$/);
      const key = keyText.trim();
      assert.match(key, /^hwk_[0-9A-Za-z]{12}_[0-9A-Za-z]{40}$/);

      const [overTcp, byEnv] = await Promise.all([
        run(['--server', api.url, '--api-key', key, 'tailnets', 'list', '--output', 'json']),
        run(['users', 'create', 'dave'], { env: { HEADWAY_SERVER: api.url, HEADWAY_API_KEY: key } }),
      ]);
      assert.equal(overTcp.code, 0, overTcp.stderr);
      assert.ok((JSON.parse(overTcp.stdout) as TailnetJson[]).some((x) => x.name === 'default'));
      assert.equal(byEnv.code, 0, byEnv.stderr);
      const audit = await api.state.listAudit({ tailnetId: api.state.defaultTailnet.id });
      assert.equal(audit.find((e) => e.action === 'user.create' && e.details['name'] === 'dave')?.actor, `api-key:${key.split('_')[1]}`);

      const [listed, before, text] = await Promise.all([
        json<ApiKeyJson[]>('apikeys', 'list'),
        apiGet<{ apikeys: ApiKeyJson[] }>('/api/v1/apikeys'),
        table('apikeys', 'list'),
      ]);
      assert.deepEqual(listed.map((k) => k.prefix), before.apikeys.map((k) => k.prefix));
      assert.match(text, /^ID +PREFIX +EXPIRES +LAST USED +STATUS\n/);
      const [expiredText, expired] = await Promise.all([
        table('apikeys', 'expire', `hwk_${created.prefix}`),
        json<ApiKeyJson>('apikeys', 'expire', key.split('_')[1]!),
      ]);
      assert.match(expiredText, /^expired API key hwk_/);
      assert.equal(expired.expired, true);
      const refused = await run(['--server', api.url, '--api-key', key, 'users', 'list']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^error: API key hwk_\w+ was revoked \(HW_API_UNAUTHENTICATED\)\n$/);
    });

    it('policy get|set|check', async () => {
      const { t, tailnet, alice } = await tailnetFor('policy-t');
      await addTestNode(tailnet, { hostname: 'laptop', userId: alice });
      await addTestNode(tailnet, { hostname: 'web', tags: ['tag:web'] });
      const [empty, plain] = await Promise.all([json<PolicyJson>('policy', 'get', ...t), cli('policy', 'get', ...t)]);
      assert.equal(empty.policy, null);
      assert.equal(empty.mode, 'database');
      assert.deepEqual([plain.code, plain.stdout, plain.stderr], [0, '', 'tailnet "policy-t" has no policy: every node may reach every node\n']);

      const file = join(api.dir, 'policy.hujson');
      const failing = join(api.dir, 'failing.hujson');
      await writeFile(file, POLICY);
      await writeFile(failing, POLICY.replace('"deny": ["tag:web:22"]', '"deny": ["tag:web:443"]'));
      const [checked, checkedJson, refused, refusedJson] = await Promise.all([
        cli('policy', 'check', file, ...t),
        json<PolicyCheckJson>('policy', 'check', file, ...t),
        cli('policy', 'check', failing, ...t),
        cli('policy', 'check', failing, '--output', 'json', ...t),
      ]);
      assert.deepEqual([checked.code, checked.stdout], [0, 'ok: the policy is valid and its 1 tests pass\n']);
      assert.equal(checkedJson.ok, true);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^error: policy\.hujson:\d+:\d+: test\(s\) failed: .*expected deny, got accept\n$/);
      assert.equal(refusedJson.code, 1);
      assert.equal((JSON.parse(refusedJson.stdout) as PolicyCheckJson).ok, false);
      assert.equal(tailnet.policyText, null, 'check stores nothing');

      const set = await cli('policy', 'set', failing, ...t);
      assert.equal(set.code, 1);
      assert.match(set.stderr, /^error: policy\.hujson:\d+:\d+: test\(s\) failed: .* \(HW_POLICY_TESTS_FAILED\)\n$/);
      assert.match(await table('policy', 'set', file, ...t), /^stored policy version \d+ for tailnet "policy-t"\n$/);
      const fromStdin = await run(['--config', api.configPath, 'policy', 'set', '-', '--output', 'json', ...t], { input: `${POLICY}// v2\n` });
      assert.equal(fromStdin.code, 0, fromStdin.stderr);
      assert.equal((JSON.parse(fromStdin.stdout) as PolicyJson).policy, `${POLICY}// v2\n`);
      assert.equal(await table('policy', 'get', ...t), `${POLICY}// v2\n`, 'printed exactly as stored');

      const tagged = await cli('nodes', 'tag', 'laptop', '--tags', 'tag:web,tag:nope', ...t);
      assert.deepEqual([tagged.code, tagged.stderr], [2, 'error: --tags: "tag:nope" is not defined in the policy\'s tagOwners (add it there first) (HW_API_TAG_NOT_DEFINED)\n']);
    });

    it('debug logs in as a node and prints the netmap it receives', async () => {
      const { tailnet, alice } = await tailnetFor('debugnet');
      const { secret } = await api.state.createPreAuthKey(tailnet, { userId: alice, reusable: true, ephemeral: false, tags: [], expiresAt: null }, TEST_ADMIN);
      const peer = await api.state.createPreAuthKey(tailnet, { userId: alice, reusable: false, ephemeral: false, tags: [], expiresAt: null }, TEST_ADMIN);
      const first = await cli('debug', '--authkey', peer.secret, '--login-server', api.url, '--hostname', 'first-box');
      assert.equal(first.code, 0, first.stderr);
      const result = await cli('debug', '--authkey', secret, '--login-server', api.url, '--hostname', 'debug-box', '--capver', '51');
      assert.equal(result.code, 0, result.stderr);
      const netmap = JSON.parse(result.stdout) as { self: { Name: string; MachineAuthorized: boolean }; peers: Array<{ Name: string }>; packetFilter: unknown[] };
      assert.equal(netmap.self.Name, 'debug-box.headway.internal.');
      assert.equal(netmap.self.MachineAuthorized, true);
      assert.deepEqual(netmap.peers.map((p) => p.Name), ['first-box.headway.internal.']);
      assert.ok(netmap.packetFilter.length > 0);
      const refused = await cli('debug', '--authkey', 'hwkey-auth-bogus-bogus', '--login-server', api.url);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /login refused: invalid pre auth key/);
    });

    it('policy compile|explain|check --offline, without a server', async () => {
      const file = join(api.dir, 'offline.hujson');
      const topology = join(api.dir, 'topology.json');
      await writeFile(file, POLICY);
      await writeFile(topology, JSON.stringify({
        users: [{ id: 1, name: 'alice', email: 'alice@example.com' }],
        nodes: {
          laptop: { user: 'alice', ipv4: '100.64.0.1', ipv6: 'fd7a:115c:a1e0::1' },
          web: { tags: ['tag:web'], ipv4: '100.64.0.2', ipv6: 'fd7a:115c:a1e0::2' },
        },
      }));
      const offline = (...args: string[]) => run(args, { env: { HEADWAY_CONFIG: join(api.dir, 'no-such-config.yaml') } });
      const [compiled, one, explained, explainedJson, checked, rejected] = await Promise.all([
        offline('policy', 'compile', '--policy', file, '--topology', topology),
        offline('policy', 'compile', file, '--topology', topology, '--node', 'web', '--output', 'json'),
        offline('policy', 'explain', '--policy', file, '--topology', topology, '--src', 'laptop', '--dst', 'web:443'),
        offline('policy', 'explain', file, '--topology', topology, '--src', 'laptop', '--dst', 'web:22', '--output', 'json'),
        offline('policy', 'check', file, '--offline'),
        offline('policy', 'compile', '--policy', topology, '--topology', topology),
      ]);
      assert.equal(compiled.code, 0, compiled.stderr);
      const envelope = JSON.parse(compiled.stdout) as { rejected: boolean; nodes: Record<string, { packet_filter: Array<{ SrcIPs: string[] }> }> };
      assert.equal(envelope.rejected, false);
      const nodes = envelope.nodes;
      assert.deepEqual(Object.keys(nodes).sort(), ['laptop', 'web']);
      assert.equal(rejected.code, 1, 'an invalid policy exits non-zero');
      const refusal = JSON.parse(rejected.stdout) as { rejected: boolean; error: string };
      assert.equal(refusal.rejected, true);
      assert.match(refusal.error, /topology\.json/);
      assert.ok(nodes['web']!.packet_filter.some((r) => r.SrcIPs.includes('100.64.0.1')), 'web accepts alice\'s laptop');
      assert.equal(one.code, 0, one.stderr);
      assert.deepEqual(Object.keys((JSON.parse(one.stdout) as { nodes: object }).nodes), ['web']);
      assert.equal(explained.code, 0, explained.stderr);
      assert.match(explained.stdout, /^laptop -> web:443 \(tcp\): allowed\n {2}by acls\[0\] at offline\.hujson:\d+:\d+: accept group:eng -> tag:web:443\n/);
      assert.equal((JSON.parse(explainedJson.stdout) as { allowed: boolean }).allowed, false);
      assert.deepEqual([checked.code, checked.stdout], [0, 'ok: the policy is valid and its 1 tests pass\n']);
    });

    it('policy explain against the running tailnet', async () => {
      const { tailnet, t } = await tailnetFor('explainnet');
      const bob = await tailnet.createUser({ name: 'bob', email: 'bob@example.com' }, TEST_ADMIN);
      const laptop = await addTestNode(tailnet, { hostname: 'laptop', userId: bob.id });
      await addTestNode(tailnet, { hostname: 'db', tags: ['tag:db'] });
      await tailnet.setPolicy('{"tagOwners": {"tag:db": []}, "acls": [{"action": "accept", "src": ["bob@example.com"], "dst": ["tag:db:5432"]}]}', TEST_ADMIN, { persist: true });
      const yes = await json<{ allowed: boolean; matches: Array<{ section: string; index: number }>; peers: boolean }>('policy', 'explain', '--src', 'laptop', '--dst', 'db:5432', ...t);
      assert.equal(yes.allowed, true);
      assert.deepEqual(yes.matches.map((m) => `${m.section}[${m.index}]`), ['acls[0]']);
      assert.equal(yes.peers, true);
      assert.match(await table('policy', 'explain', '--src', 'laptop', '--dst', 'db:22', ...t), /^laptop -> db:22 \(tcp\): denied\n/);
      const half = await cli('policy', 'explain', '--topology', 'x.json', '--src', 'laptop', '--dst', 'db:22', ...t);
      assert.equal(half.code, 2);
      assert.match(half.stderr, /offline needs both a policy file and --topology/);
      void laptop;
    });
  });

  it('audit list', async () => {
    const [entries, scoped, text] = await Promise.all([
      json<AuditEntryJson[]>('audit', 'list', '--limit', '1000'),
      json<AuditEntryJson[]>('audit', 'list', '--tailnet', 'nodes-t'),
      table('audit', 'list', '-n', '3'),
    ]);
    const actions = new Set(entries.filter((e) => e.actor === 'unix-socket').map((e) => e.action));
    for (const action of ['tailnet.create', 'tailnet.delete', 'user.create', 'user.update', 'user.delete', 'node.rename', 'node.tag', 'node.move', 'node.expire',
      'node.delete', 'node.register', 'node.routes.approve', 'node.approve', 'tailnet.settings', 'preauthkey.create', 'preauthkey.expire', 'apikey.create', 'apikey.expire', 'policy.set']) {
      assert.ok(actions.has(action), action);
    }
    assert.ok(new Set(entries.map((e) => e.tailnet)).size > 2, 'every tailnet without --tailnet');
    assert.ok(scoped.length > 0 && scoped.every((e) => e.tailnet === 'nodes-t'));
    assert.match(text, /^ID +TIME +TAILNET +ACTOR +FROM +ACTION +TARGET +DETAILS\n(.+\n){3}$/);
    assert.ok(entries.filter((e) => e.actor === 'unix-socket').every((e) => e.from === 'local'), 'changes over the admin socket come from "local"');
  });

  it('serve runs the server until SIGTERM, shuts down cleanly, and keeps the data for the next start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hw-serve-'));
    try {
      const config = join(dir, 'config.yaml');
      await writeFile(config, [
        'listen_addr: 127.0.0.1:0',
        'metrics_listen_addr: 127.0.0.1:0',
        `data_dir: ${JSON.stringify(join(dir, 'data'))}`,
        'log: { level: info, format: json }',
        'derp: { server: { stun_listen_addr: "127.0.0.1:0" } }',
        '',
      ].join('\n'));
      const first = await startServe(config);
      const created = await run(['--config', config, 'users', 'create', 'alice']);
      assert.equal(created.code, 0, created.stderr);
      const key = (await run(['--config', config, 'apikeys', 'create'])).stdout.trim();
      const overTcp = await run(['--server', first.url, '--api-key', key, 'users', 'list', '-o', 'json']);
      assert.equal(overTcp.code, 0, overTcp.stderr);
      assert.deepEqual((JSON.parse(overTcp.stdout) as UserJson[]).map((u) => u.name), ['alice']);
      const stopped = await first.stop('SIGTERM');
      assert.equal(stopped.code, 0, stopped.log);
      assert.match(stopped.log, /"msg":"headway stopped"/);
      assert.ok(!existsSync(join(dir, 'data', 'headway.sock')), 'the socket is removed');
      const down = await run(['--config', config, 'users', 'list']);
      assert.equal(down.code, 1);
      assert.match(down.stderr, /^error: cannot reach the Headway server on the unix socket .*headway\.sock: no such socket file/);

      const second = await startServe(config);
      const again = await run(['--config', config, 'users', 'list', '-o', 'json']);
      assert.deepEqual((JSON.parse(again.stdout) as UserJson[]).map((u) => u.name), ['alice'], 'data survives a restart');
      assert.equal((await second.stop('SIGINT')).code, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('failures', { concurrency: true }, () => {
    const cases: Array<{ name: string; args: string[]; code: number; stderr: string | RegExp }> = [
      {
        name: 'a duration that is not one',
        args: ['preauthkeys', 'create', '--user', 'alice', '--expiration', '2x'],
        code: 2, stderr: 'error: --expiration: "2x" is not a duration (units: ms, s, m, h, d, w)\n',
      },
      {
        name: 'a tag the server rejects, named by its option',
        args: ['preauthkeys', 'create', '--tags', 'tag:ok,web'],
        code: 2, stderr: 'error: --tags: "web" is not a tag (want tag:<letter>[letters, digits, -])\n',
      },
      {
        name: 'a key with neither user nor tags',
        args: ['preauthkeys', 'create'],
        code: 2, stderr: 'error: --user/--tags: give user or tags (a key registers nodes for a user or as tagged nodes)\n',
      },
      {
        name: 'an unknown option',
        args: ['users', 'list', '--colour'],
        code: 2, stderr: /^error: unknown option '--colour'\n/,
      },
      {
        name: 'a missing argument',
        args: ['users', 'rename', 'alice'],
        code: 2, stderr: /^error: missing required argument 'new-name'\n/,
      },
      {
        name: 'an unknown output format',
        args: ['users', 'list', '--output', 'yaml'],
        code: 2, stderr: /^error: option '-o, --output <format>' argument 'yaml' is invalid\. Allowed choices are table, json\.\n/,
      },
      {
        name: 'a missing subcommand',
        args: ['nodes'],
        code: 2, stderr: /^Usage: headway nodes/,
      },
      {
        name: 'a user that does not exist',
        args: ['users', 'delete', 'nobody'],
        code: 1, stderr: 'error: user "nobody" not found in tailnet "default" (HW_STATE_USER_NOT_FOUND)\n',
      },
      {
        name: 'a conflict',
        args: ['tailnets', 'delete', 'default'],
        code: 1, stderr: 'error: the default tailnet cannot be deleted (HW_STATE_TAILNET_DEFAULT)\n',
      },
      {
        name: 'a tailnet that does not exist',
        args: ['nodes', 'list', '--tailnet', 'nope'],
        code: 1, stderr: 'error: tailnet "nope" not found (HW_STATE_TAILNET_NOT_FOUND)\n',
      },
      {
        name: 'a policy file that does not exist',
        args: ['policy', 'set', '/nonexistent/policy.hujson'],
        code: 2, stderr: 'error: <file>: cannot read "/nonexistent/policy.hujson": no such file\n',
      },
      {
        name: 'a bad limit',
        args: ['audit', 'list', '--limit', 'lots'],
        code: 2, stderr: 'error: --limit: want a whole number from 1 to 10000, got "lots"\n',
      },
    ];
    for (const c of cases) {
      it(`exits ${c.code} with a clear message for ${c.name}`, async () => {
        const result = await cli(...c.args);
        assert.equal(result.code, c.code, result.stderr);
        assert.equal(result.stdout, '');
        if (typeof c.stderr === 'string') assert.equal(result.stderr, c.stderr);
        else assert.match(result.stderr, c.stderr);
      });
    }

    it('names the socket path when no server is running', async () => {
      const socket = join(api.dir, 'nothing-here.sock');
      const config = join(api.dir, 'stopped.yaml');
      await writeFile(config, `data_dir: ${JSON.stringify(api.dir)}\nunix_socket: ${JSON.stringify(socket)}\n`);
      const result = await run(['users', 'list'], { env: { HEADWAY_CONFIG: config } });
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `error: cannot reach the Headway server on the unix socket ${socket}: no such socket file; is \`headway serve\` running with this config? ` +
          '(use --config or HEADWAY_CONFIG to name the server\'s config, or --server and --api-key) (HW_CLI_UNREACHABLE)\n',
      );
      const missing = await run(['--config', join(api.dir, 'missing.yaml'), 'users', 'list']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /missing\.yaml: cannot read the configuration file: no such file \(HW_CONFIG_UNREADABLE\)\n$/);
    });

    it('says what is wrong with --server', async () => {
      const noKey = await run(['--server', api.url, 'users', 'list']);
      assert.equal(noKey.code, 2);
      assert.match(noKey.stderr, /^error: --server needs an API key: give --api-key or set HEADWAY_API_KEY/);
      const badUrl = await run(['--server', 'vpn.example.com', '--api-key', 'k', 'users', 'list']);
      assert.equal(badUrl.code, 2);
      assert.equal(badUrl.stderr, 'error: --server: "vpn.example.com" is not a URL (want e.g. https://vpn.example.com)\n');
      const badKey = await run(['--server', api.url, '--api-key', 'hwk_nope', 'users', 'list']);
      assert.equal(badKey.code, 1);
      assert.equal(badKey.stderr, 'error: invalid API key (HW_API_UNAUTHENTICATED)\n');
    });
  });
});
