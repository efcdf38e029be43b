import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ALLOW_ALL_POLICY_TEXT, PolicyError, checkPolicy, compileTopology, explain } from './index.js';
import { checkCase, saasVectorsDir, settingsOfCase, stable, topologyOfCase, type SaasCase } from './testing.js';

const dir = saasVectorsDir();
const noCases = dir === null ? 'case directory not found (set HEADWAY_SAAS_VECTORS)' : false;

function loadCase(relative: string): SaasCase {
  return { ...(JSON.parse(readFileSync(join(dir!, relative), 'utf8')) as Omit<SaasCase, 'file'>), file: relative };
}

describe('compileTopology', { skip: noCases }, () => {
  // One case per category, compiled from the case's own topology and tailnet as the CLI reads
  // them (registration order from each node's `created`).
  const perCategory = [
    'acl_results/acl-a01.json',
    'grant_results/grant-k4.json',
    'grant_results/grant-v19.json',
    'routes_results/routes-f5-bidirectional-subnet-access.json',
    'issue_3212/routes-b17-autogroup-internet-with-exit-autoapprover.json',
    'nodeattrs_results/nodeattrs-target-a10-autogroup-admin.json',
    'policytest_results/policytest-allpass-acls-and-grants-mixed.json',
    'ssh_results/ssh-d2.json',
    'sshtest_results/sshtest-allpass-autogroup-self-same-user.json',
    'acl_results/acl-err05.json',
    'policytest_results/policytest-mixed-two-entries.json',
  ];
  for (const file of perCategory) {
    it(`reproduces the service's output for ${file}`, () => {
      const c = loadCase(file);
      const result = compileTopology(c.policy, topologyOfCase(c), { settings: settingsOfCase(c), whois: true });
      const outcome = checkCase(c, result);
      assert.ok(outcome.pass, outcome.pass ? '' : `${outcome.reason} ${JSON.stringify(outcome.diffs[0] ?? '').slice(0, 800)}`);
    });
  }

  it('returns one node when asked, with the case field names', () => {
    const c = loadCase('acl_results/acl-a01.json');
    const result = compileTopology(c.policy, c.topology, { node: 'bulbasaur' });
    assert.equal(result.rejected, false);
    if (result.rejected) return;
    assert.deepEqual(Object.keys(result.nodes), ['bulbasaur']);
    const node = result.nodes['bulbasaur']!;
    assert.deepEqual(Object.keys(node).sort(), ['packet_filter', 'peers', 'self', 'ssh_rules']);
    assert.equal(node.peers[0]!.name, 'beedrill');
  });

  it('reports a rejected policy with the located error', () => {
    const result = compileTopology('{"acls": [{"action": "accept", "src": ["tag:nope"], "dst": ["*:*"]}]}', { users: [], nodes: {} });
    assert.equal(result.rejected, true);
    if (result.rejected) assert.match(result.error, /^policy\.hujson:1:40: acls\[0\]\.src\[0\]: src=tag not found: "tag:nope"/);
  });

  it('rejects a policy whose tests fail and names the assertion', () => {
    const topology = {
      users: [{ id: 1, name: 'alice', email: 'alice@example.com' }],
      nodes: { laptop: { user: 'alice', tags: [], ipv4: '100.64.0.1', ipv6: 'fd7a:115c:a1e0::1' }, db: { tags: ['tag:db'], ipv4: '100.64.0.2', ipv6: 'fd7a:115c:a1e0::2' } },
    };
    const policy = `{
      "tagOwners": {"tag:db": ["alice@example.com"]},
      "acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:db:5432"]}],
      "tests": [{"src": "alice@example.com", "accept": ["tag:db:5432"], "deny": ["tag:db:22"]},
                {"src": "alice@example.com", "accept": ["tag:db:22"]}],
    }`;
    const result = compileTopology(policy, topology);
    assert.equal(result.rejected, true);
    if (result.rejected) {
      assert.match(result.error, /test\(s\) failed/);
      assert.match(result.error, /tests\[1\]: alice@example\.com -> tag:db:22: expected accept, got deny/);
    }
  });

  it('throws on a malformed topology instead of calling the policy rejected', () => {
    assert.throws(() => compileTopology('{}', { users: 'nope', nodes: {} }), (err: unknown) => err instanceof PolicyError && err.code === 'HW_POLICY_INVALID_TOPOLOGY');
    assert.throws(
      () => compileTopology('{}', { users: [], nodes: { a: { user: 'ghost' } } }),
      (err: unknown) => err instanceof PolicyError && /no user named "ghost"/.test(err.message),
    );
    assert.throws(() => compileTopology('{}', { users: [], nodes: {} }, { node: 'missing' }), (err: unknown) => err instanceof PolicyError && err.code === 'HW_POLICY_UNKNOWN_NODE');
  });
});

describe('explain', { skip: noCases }, () => {
  const c = dir === null ? null : loadCase('acl_results/acl-ar02.json');
  // acls: [0] tag:client -> tag:server:22, [1] tag:client -> tag:server:80,443,
  //       [2] * -> tag:server:53 udp.
  it('names the acl that allows a connection', () => {
    const r = explain(c!.policy, c!.topology, { src: 'weedle', dst: 'beedrill:22' });
    assert.equal(r.allowed, true);
    assert.equal(r.peers, true);
    assert.deepEqual(
      r.matches.map((m) => [m.section, m.index]),
      [['acls', 0]],
    );
    assert.match(r.matches[0]!.rule, /^accept tag:client -> tag:server:22$/);
    assert.match(r.matches[0]!.location, /^policy\.hujson:\d+:\d+$/);
  });

  it('honours the protocol', () => {
    const udp = explain(c!.policy, c!.topology, { src: 'bulbasaur', dst: 'beedrill:53', proto: 'udp' });
    assert.equal(udp.allowed, true);
    assert.deepEqual(udp.matches.map((m) => m.index), [2]);
    const tcp = explain(c!.policy, c!.topology, { src: 'bulbasaur', dst: 'beedrill:53', proto: 'tcp' });
    assert.equal(tcp.allowed, false);
    assert.match(tcp.reason ?? '', /no acl or grant allows/);
  });

  it('says no when nothing allows it', () => {
    const r = explain(c!.policy, c!.topology, { src: 'bulbasaur', dst: 'ivysaur:22' });
    assert.equal(r.allowed, false);
    assert.equal(r.peers, false);
  });

  it('explains grants, including via routes to a subnet address', () => {
    const g = loadCase('grant_results/grant-v13.json');
    const r = explain(g.policy, g.topology, { src: 'ivysaur', dst: '10.33.1.5:443' });
    assert.equal(r.allowed, true);
    assert.match(r.matches[0]!.rule, /^grant group:developers -> 10\.33\.0\.0\/16 ip \[tcp:80, tcp:443\] via tag:router$/);
  });
});

describe('tailnet settings and registration order come from the topology', () => {
  const topology = (tailnet?: unknown) => ({
    users: [{ id: 1, name: 'alice', email: 'alice@example.com' }],
    nodes: {
      // Registered second although listed first: the older router is primary.
      'router-b': { user: 'alice', ipv4: '100.64.0.2', ipv6: 'fd7a:115c:a1e0::2', routable_ips: ['10.0.0.0/24'], approved_routes: ['10.0.0.0/24'], created: '2026-05-01T10:00:05Z' },
      'router-a': { user: 'alice', ipv4: '100.64.0.1', ipv6: 'fd7a:115c:a1e0::1', routable_ips: ['10.0.0.0/24'], approved_routes: ['10.0.0.0/24'], created: '2026-05-01T10:00:00Z' },
    },
    ...(tailnet === undefined ? {} : { tailnet }),
  });
  const autoUpdateOf = (result: ReturnType<typeof compileTopology>): unknown[] => {
    assert.equal(result.rejected, false);
    return result.rejected ? [] : Object.values(result.nodes).map((n) => n.self.CapMap['default-auto-update']);
  };

  it('sends default-auto-update [false] to every node unless the setting is on', () => {
    assert.deepEqual(autoUpdateOf(compileTopology(ALLOW_ALL_POLICY_TEXT, topology())), [[false], [false]]);
    assert.deepEqual(autoUpdateOf(compileTopology(ALLOW_ALL_POLICY_TEXT, topology({ settings: { devices_auto_updates_on: false } }))), [[false], [false]]);
    assert.deepEqual(autoUpdateOf(compileTopology(ALLOW_ALL_POLICY_TEXT, topology({ dns: { magic_dns: true }, settings: { devices_auto_updates_on: true } }))), [[true], [true]]);
  });

  it('rejects a malformed tailnet object with where it is wrong', () => {
    assert.throws(() => compileTopology(ALLOW_ALL_POLICY_TEXT, topology({ settings: { devices_auto_updates_on: 'yes' } })), /tailnet\.settings\.devices_auto_updates_on: want true or false/);
    assert.throws(() => compileTopology(ALLOW_ALL_POLICY_TEXT, topology([])), /tailnet: want an object/);
  });

  it('elects the router registered first as primary, from created', () => {
    const result = compileTopology(ALLOW_ALL_POLICY_TEXT, topology());
    assert.equal(result.rejected, false);
    if (result.rejected) return;
    assert.deepEqual(result.nodes['router-a']!.self.PrimaryRoutes, ['10.0.0.0/24']);
    assert.equal(result.nodes['router-b']!.self.PrimaryRoutes, undefined);
  });
});

describe('the conformance runner reads inputs only', { skip: noCases }, () => {
  for (const file of ['routes_results/routes-e5-first-advertiser-is-primary.json', 'routes_results/routes-f5-bidirectional-subnet-access.json', 'grant_results/grant-v19.json', 'nodeattrs_results/nodeattrs-tailnet-devices-auto-updates-off.json']) {
    it(`compiles ${file} the same with its expectation removed`, () => {
      const c = loadCase(file);
      const blind: SaasCase = { ...c, expect: Object.fromEntries(Object.keys(c.expect).map((k) => [k, { packet_filter: [], ssh_rules: [], self: {}, peers: [] }])) };
      assert.equal(stable(compileTopology(c.policy, topologyOfCase(blind), { settings: settingsOfCase(blind), whois: true })), stable(compileTopology(c.policy, topologyOfCase(c), { settings: settingsOfCase(c), whois: true })));
    });
  }
});

describe('checkPolicy', () => {
  it('passes a valid policy and runs its tests against synthetic devices', () => {
    const r = checkPolicy(`{
      "groups": {"group:eng": ["alice@example.com"]},
      "tagOwners": {"tag:web": ["group:eng"]},
      "acls": [{"action": "accept", "src": ["group:eng"], "dst": ["tag:web:443"]}],
      "tests": [{"src": "alice@example.com", "accept": ["tag:web:443"], "deny": ["tag:web:22"]}],
    }`);
    assert.equal(r.ok, true, r.error);
    assert.equal(r.tests?.total, 1);
    assert.equal(r.tests?.passed, true);
  });

  it('fails a policy whose test does not hold', () => {
    const r = checkPolicy(`{
      "tagOwners": {"tag:web": ["alice@example.com"]},
      "acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:web:443"]}],
      "tests": [{"src": "alice@example.com", "accept": ["tag:web:22"]}],
    }`);
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /^policy\.hujson:\d+:\d+: test\(s\) failed: tests\[0\]: alice@example\.com -> tag:web:22: expected accept, got deny/);
  });

  it('fails a malformed policy with its location', () => {
    const r = checkPolicy('{"acls": [}', { file: 'tailnet.hujson' });
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /^tailnet\.hujson:1:11: invalid HuJSON/);
  });
});
