import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyIndex, compilePolicyText, diffIndexes, type NodeFacts, type TailnetFacts } from '../index.js';

function node(id: number, name: string, extra: Partial<NodeFacts> = {}): NodeFacts {
  return {
    id,
    name,
    ipv4: `100.64.0.${id}`,
    ipv6: `fd7a:115c:a1e0::${id.toString(16)}`,
    userId: null,
    tags: [],
    advertisedRoutes: [],
    approvedRoutes: [],
    online: true,
    ...extra,
  };
}

const facts: TailnetFacts = {
  users: [
    { id: 1, name: 'alice', email: 'alice@example.com', role: 'owner' },
    { id: 2, name: 'bob', email: 'bob@example.com', role: 'member' },
    { id: 3, name: 'carol', email: 'carol@example.org', role: 'admin' },
  ],
  nodes: [
    node(1, 'alice-laptop', { userId: 1 }),
    node(2, 'alice-phone', { userId: 1 }),
    node(3, 'bob-laptop', { userId: 2 }),
    node(4, 'carol-laptop', { userId: 3 }),
    node(5, 'web-1', { tags: ['tag:web'], userId: 1 }),
    node(6, 'web-2', { tags: ['tag:web'], userId: 1 }),
    node(7, 'router', { tags: ['tag:router'], userId: 1, advertisedRoutes: ['10.1.0.0/16', '0.0.0.0/0', '::/0'], approvedRoutes: ['10.1.0.0/16'] }),
  ],
};

const policy = `{
  "groups": {"group:eng": ["alice@example.com", "bob@example.com"]},
  "tagOwners": {
    "tag:web": ["group:eng"],
    "tag:router": ["carol@example.org"],
    "tag:canary": ["tag:web"],
  },
  "autoApprovers": {
    "routes": {"10.0.0.0/8": ["tag:router"]},
    "exitNode": ["tag:router"],
  },
  "acls": [
    {"action": "accept", "src": ["group:eng"], "dst": ["tag:web:443"]},
    {"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*"]},
    {"action": "accept", "src": ["carol@example.org"], "dst": ["10.1.0.0/16:22"]},
  ],
  "ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"]}],
}`;

describe('PolicyIndex', () => {
  const index = new PolicyIndex(compilePolicyText(policy), facts);

  it('puts interchangeable nodes in one identity class and shares their filter template', () => {
    assert.equal(index.classOf(5), index.classOf(6));
    assert.notEqual(index.classOf(5), index.classOf(7));
    const f5 = index.filterFor(5);
    const f6 = index.filterFor(6);
    assert.equal(f5.length, 1);
    assert.equal(f5[0]!.SrcIPs, f6[0]!.SrcIPs, 'SrcIPs arrays are shared, not copied');
    assert.deepEqual(f5[0]!.DstPorts, [
      { IP: '100.64.0.5', Ports: { First: 443, Last: 443 } },
      { IP: 'fd7a:115c:a1e0::5', Ports: { First: 443, Last: 443 } },
    ]);
  });

  it('narrows autogroup:self to the owner and lists all their devices as destinations', () => {
    const rules = index.filterFor(1);
    assert.equal(rules.length, 1);
    assert.deepEqual(rules[0]!.SrcIPs, ['100.64.0.1', 'fd7a:115c:a1e0::1', '100.64.0.2', 'fd7a:115c:a1e0::2']);
    assert.equal(rules[0]!.DstPorts!.length, 4);
  });

  it('makes visibility symmetric and includes same-user devices', () => {
    assert.deepEqual(index.peersOf(1).sort(), [2, 5, 6]);
    assert.deepEqual(index.peersOf(5).sort(), [1, 2, 3]);
    assert.ok(index.sees(1, 2) && index.sees(2, 1));
    assert.ok(!index.sees(3, 4));
    assert.deepEqual(index.peersOf(4), [7]);
    assert.deepEqual(index.peersOf(7), [4]);
  });

  it('answers seesIfKnown for nodes it holds, and false once a node has left', () => {
    const own = new PolicyIndex(compilePolicyText(policy), facts);
    assert.ok(own.seesIfKnown(1, 5) && own.seesIfKnown(5, 1));
    assert.ok(own.seesIfKnown(1, 2) && own.seesIfKnown(2, 1), 'autogroup:self from either side');
    assert.ok(!own.seesIfKnown(3, 4) && !own.seesIfKnown(4, 3));
    assert.ok(!own.seesIfKnown(1, 99) && !own.seesIfKnown(99, 1));
    own.removeNode(5);
    assert.ok(!own.seesIfKnown(1, 5) && !own.seesIfKnown(5, 1));
    own.upsertNode(facts.nodes[4]!);
    assert.ok(own.seesIfKnown(1, 5) && own.seesIfKnown(5, 1));
  });

  it('shows a router its route only to viewers the policy lets use it', () => {
    assert.deepEqual(index.peerView(4, 7).AllowedIPs, ['100.64.0.7/32', 'fd7a:115c:a1e0::7/128', '10.1.0.0/16']);
    assert.deepEqual(index.peerView(4, 7).PrimaryRoutes, ['10.1.0.0/16']);
    assert.deepEqual(index.selfView(7).PrimaryRoutes, ['10.1.0.0/16']);
    assert.deepEqual(index.peerView(1, 5).AllowedIPs, ['100.64.0.5/32', 'fd7a:115c:a1e0::5/128']);
  });

  it('stamps role caps on the self view', () => {
    assert.ok('https://tailscale.com/cap/is-owner' in index.selfView(1).CapMap);
    assert.ok('https://tailscale.com/cap/is-admin' in index.selfView(4).CapMap);
    assert.ok(!('https://tailscale.com/cap/is-admin' in index.selfView(3).CapMap));
    assert.deepEqual(index.selfView(1).CapMap['tailnet-display-name'], ['alice@example.com']);
  });

  it('gives each user an ssh rule for their own devices', () => {
    const rules = index.sshRulesFor(2);
    assert.equal(rules.length, 1);
    assert.deepEqual(rules[0]!.sshUsers, { '*': '=', root: '' });
    assert.equal(rules[0]!.principals.length, 4);
    assert.deepEqual(index.sshRulesFor(5), []);
  });

  it('decides who may apply tags, including tags owned by tags', () => {
    assert.deepEqual(index.tagsAllowed({ userId: 2 }, ['tag:web']), { allowed: true, denied: [] });
    const denied = index.tagsAllowed({ userId: 2 }, ['tag:web', 'tag:router', 'tag:ghost']);
    assert.equal(denied.allowed, false);
    assert.deepEqual(
      denied.denied.map((d) => d.tag),
      ['tag:router', 'tag:ghost'],
    );
    assert.equal(index.tagsAllowed({ tags: ['tag:web'] }, ['tag:canary']).allowed, true);
    assert.equal(index.tagsAllowed({ tags: ['tag:router'] }, ['tag:canary']).allowed, false);
  });

  it('auto-approves routes through covering prefixes and exit routes only through exitNode', () => {
    const router = { userId: 1, tags: ['tag:router'], ipv4: '100.64.0.7', ipv6: null };
    assert.deepEqual(index.autoApprovedRoutes(router, ['10.1.0.0/16', '10.2.3.0/24', '192.168.0.0/24', '0.0.0.0/0', '::/0']), [
      '10.1.0.0/16',
      '10.2.3.0/24',
      '0.0.0.0/0',
      '::/0',
    ]);
    assert.deepEqual(index.autoApprovedRoutes({ userId: 2, tags: [], ipv4: null, ipv6: null }, ['10.1.0.0/16', '0.0.0.0/0']), []);
  });
});

describe('PolicyIndex device posture', () => {
  const postureFacts: TailnetFacts = {
    users: [{ id: 1, name: 'alice', email: 'alice@example.com', role: 'owner' }],
    nodes: [
      node(1, 'mac', { userId: 1, postureAttributes: { 'node:os': 'macos', 'node:tsVersion': '1.62.1' } }),
      node(2, 'old-mac', { userId: 1, postureAttributes: { 'node:os': 'macos', 'node:tsVersion': '1.58' } }),
      node(3, 'linux', { userId: 1, postureAttributes: { 'node:os': 'linux', 'node:tsVersion': '1.70' } }),
      node(4, 'unknown', { userId: 1 }),
      node(5, 'db', { tags: ['tag:db'] }),
    ],
  };
  const text = `{
    "tagOwners": {"tag:db": ["alice@example.com"]},
    "postures": {
      "posture:mac": ["node:os == 'macos'", "node:tsVersion >= '1.60'"],
      "posture:linux": ["node:os IN ['linux', 'freebsd']"],
    },
    "acls": [
      {"action": "accept", "src": ["autogroup:member", "10.0.0.0/8"], "srcPosture": ["posture:mac", "posture:linux"], "dst": ["tag:db:5432"]},
    ],
  }`;

  it('admits only source devices meeting one of the postures, and no literal addresses', () => {
    const index = new PolicyIndex(compilePolicyText(text), postureFacts);
    const rules = index.filterFor(5);
    assert.equal(rules.length, 1);
    assert.deepEqual(rules[0]!.SrcIPs, ['100.64.0.1', 'fd7a:115c:a1e0::1', '100.64.0.3', 'fd7a:115c:a1e0::3']);
    assert.deepEqual(index.peersOf(5).sort(), [1, 3]);
  });

  it('applies defaultSrcPosture to rules that name none', () => {
    const withDefault = text.replace('"srcPosture": ["posture:mac", "posture:linux"], ', '').replace('"acls"', '"defaultSrcPosture": ["posture:linux"], "acls"');
    const index = new PolicyIndex(compilePolicyText(withDefault), postureFacts);
    assert.deepEqual(index.filterFor(5)[0]!.SrcIPs, ['100.64.0.3', 'fd7a:115c:a1e0::3']);
  });

  it('rejects a malformed posture condition with its location', () => {
    assert.throws(() => compilePolicyText('{"postures": {"posture:x": ["node:os = macos"]}}'), /postures\["posture:x"\]\[0\]: invalid posture condition "node:os = macos"/);
  });
});

describe('PolicyIndex wire form of filters', () => {
  const members = compilePolicyText('{"tagOwners": {"tag:web": [], "tag:router": []}, "acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:member:*", "tag:web:443", "10.1.0.0/16:22"]}]}');
  const index = new PolicyIndex(members, facts);
  const wire = { selfAsWildcard: true } as const;

  it('gives every route-less node of a class one shared filter and key', () => {
    const keys = new Set([1, 2, 3, 4].map((id) => index.filterKey(id, wire)));
    assert.equal(keys.size, 1, 'one key for all members');
    const filters = new Set([1, 2, 3, 4].map((id) => JSON.stringify(index.filterFor(id, wire))));
    assert.equal(filters.size, 1);
    assert.equal(new Set([1, 2, 3, 4].map((id) => index.filterKey(id))).size, 4, 'the SaaS form names each node');
  });

  it('accepts the same packets: own addresses become one * entry', () => {
    const saas = index.filterFor(3);
    const wired = index.filterFor(3, wire);
    assert.deepEqual(saas.map((r) => r.SrcIPs), wired.map((r) => r.SrcIPs));
    assert.deepEqual(saas[0]!.DstPorts!.map((d) => d.IP).sort(), ['100.64.0.3', 'fd7a:115c:a1e0::3']);
    assert.deepEqual(wired[0]!.DstPorts, [{ IP: '*', Ports: { First: 0, Last: 65535 } }]);
  });

  it('keeps the exact form for a node that serves routes', () => {
    assert.deepEqual(index.filterFor(7, wire), index.filterFor(7));
    assert.equal(index.filterKey(7, wire).includes('@'), index.filterKey(7).includes('@'));
  });
});

describe('PolicyIndex subnet route changes', () => {
  const routePolicy = `{
    "tagOwners": {"tag:router": ["alice@example.com"], "tag:web": ["alice@example.com"]},
    "acls": [
      {"action": "accept", "src": ["autogroup:member"], "dst": ["10.0.0.0/8:*", "tag:web:443"]},
      {"action": "accept", "src": ["tag:web"], "dst": ["tag:web:*"]},
    ],
  }`;
  const routerFacts = (approved: string[]): NodeFacts => node(7, 'router', { tags: ['tag:router'], userId: 1, advertisedRoutes: ['10.1.0.0/24', '100.64.0.0/24'], approvedRoutes: approved });
  const world = (approved: string[]): TailnetFacts => ({ users: facts.users, nodes: [...facts.nodes.slice(0, 6), routerFacts(approved)] });
  const normal = (d: ReturnType<PolicyIndex['upsertNode']>): string =>
    JSON.stringify({
      gained: [...d.gained].map(([k, v]) => [k, [...v].sort()]).sort(),
      lost: [...d.lost].map(([k, v]) => [k, [...v].sort()]).sort(),
      viewChanged: [...d.viewChanged].map(([k, v]) => [k, [...v].sort()]).sort(),
      filterChanged: [...d.filterChanged].sort(),
      selfChanged: [...d.selfChanged].sort(),
    });

  it('updates in place, with the exact delta, when a route that covers no device is approved and withdrawn', () => {
    const compiled = compilePolicyText(routePolicy);
    const index = new PolicyIndex(compiled, world([]));
    const approved = index.upsertNode(routerFacts(['10.1.0.0/24']));
    assert.equal(index.rebuilds, 0, 'no rebuild');
    assert.equal(normal(approved), normal(diffIndexes(new PolicyIndex(compiled, world([])), new PolicyIndex(compiled, world(['10.1.0.0/24'])))));
    assert.ok(approved.gained.get(3)?.includes(7), "bob's laptop gains the router, to reach 10.1.0.0/24 through it");
    assert.deepEqual(index.peerView(3, 7).PrimaryRoutes, ['10.1.0.0/24']);
    const withdrawn = index.upsertNode(routerFacts([]));
    assert.equal(index.rebuilds, 0);
    assert.equal(normal(withdrawn), normal(diffIndexes(new PolicyIndex(compiled, world(['10.1.0.0/24'])), new PolicyIndex(compiled, world([])))));
    assert.deepEqual(index.peerView(3, 7).PrimaryRoutes, []);
  });

  it('rebuilds when a route covers devices, or when a * source lists the served routes', () => {
    const index = new PolicyIndex(compilePolicyText(routePolicy), world([]));
    index.upsertNode(routerFacts(['100.64.0.0/24']));
    assert.equal(index.rebuilds, 1, 'devices inside the route change which selections the router belongs to');
    const mesh = new PolicyIndex(compilePolicyText('{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}'), world([]));
    const delta = mesh.upsertNode(routerFacts(['10.1.0.0/24']));
    assert.equal(mesh.rebuilds, 1);
    assert.equal(delta.filterChanged.length, 7, 'every filter lists the new route among the sources of *');
  });
});

describe('PolicyIndex.setSettings', () => {
  const compiled = compilePolicyText(policy);
  const build = (settings: TailnetFacts['settings']) => new PolicyIndex(compiled, { ...facts, settings });

  it('sends the auto-update setting to every node and reports exactly the self views as changed', () => {
    const index = build({ autoUpdate: false });
    const delta = index.setSettings({ autoUpdate: true });
    assert.deepEqual([...delta.selfChanged].sort(), index.nodeIds().sort());
    assert.deepEqual(delta, { ...diffIndexes(build({ autoUpdate: false }), build({ autoUpdate: true })), selfChanged: delta.selfChanged });
    for (const id of index.nodeIds()) assert.deepEqual(index.selfView(id).CapMap['default-auto-update'], [true]);
    assert.equal(index.setSettings({ autoUpdate: true }).selfChanged.length, 0, 'no change, no delta');
  });

  it('rebuilds and diffs when the display name changes', () => {
    const index = build({ autoUpdate: false });
    const expected = diffIndexes(build({ autoUpdate: false }), build({ autoUpdate: false, displayName: 'Example Inc.' }));
    const delta = index.setSettings({ autoUpdate: false, displayName: 'Example Inc.' });
    assert.deepEqual([...delta.selfChanged].sort(), [...expected.selfChanged].sort());
    assert.deepEqual(index.selfView(1).CapMap['tailnet-display-name'], ['Example Inc.']);
  });

  it('finds the check period of the check rules that let a login through', () => {
    const checks = new PolicyIndex(compilePolicyText(`{
      "groups": {"group:eng": ["alice@example.com", "bob@example.com"]},
      "tagOwners": {"tag:web": ["group:eng"], "tag:router": ["carol@example.org"]},
      "ssh": [
        {"action": "check", "src": ["group:eng"], "dst": ["tag:web"], "users": ["root"], "checkPeriod": "2h"},
        {"action": "check", "src": ["alice@example.com"], "dst": ["tag:web"], "users": ["root", "autogroup:nonroot"], "checkPeriod": "30m"},
        {"action": "check", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"]},
        {"action": "accept", "src": ["carol@example.org"], "dst": ["tag:router"], "users": ["root"]},
      ],
    }`), facts);
    // alice as root on web-1: both tag rules match; the shortest period wins.
    assert.equal(checks.sshCheckPeriodMs(1, 5, 'root'), 30 * 60_000);
    // bob: only the group rule, and only root.
    assert.equal(checks.sshCheckPeriodMs(3, 5, 'root'), 2 * 3_600_000);
    assert.equal(checks.sshCheckPeriodMs(3, 5, 'ubuntu'), undefined);
    // autogroup:self without a checkPeriod: null (the caller's default); not for root, not across users.
    assert.equal(checks.sshCheckPeriodMs(1, 2, 'ubuntu'), null);
    assert.equal(checks.sshCheckPeriodMs(1, 2, 'root'), undefined);
    assert.equal(checks.sshCheckPeriodMs(3, 2, 'ubuntu'), undefined);
    // An accept rule is no check; unknown nodes are none either.
    assert.equal(checks.sshCheckPeriodMs(4, 7, 'root'), undefined);
    assert.equal(checks.sshCheckPeriodMs(99, 5, 'root'), undefined);
  });
});

describe('PolicyIndex after a rebuild', () => {
  it('keeps selection address sets current when nodes join after a policy replace', () => {
    // The rebuilt index's selections must follow the live index's address epoch: before the
    // split they kept reading the discarded index's, so their address sets went stale.
    const text = `{"tagOwners": {"tag:web": ["alice@example.com"]}, "acls": [{"action": "accept", "src": ["tag:web"], "dst": ["*:443"]}]}`;
    const index = new PolicyIndex(compilePolicyText(text), facts);
    index.replacePolicy(compilePolicyText(text.replace('443', '8443')));
    const srcSet = (): string[] => [...index.items()[0]!.srcSet.toStrings()];
    assert.deepEqual(srcSet(), ['100.64.0.5-100.64.0.6', 'fd7a:115c:a1e0::5-fd7a:115c:a1e0::6']);
    index.upsertNode(node(9, 'web-3', { tags: ['tag:web'], userId: 1 }));
    assert.deepEqual(srcSet(), ['100.64.0.5-100.64.0.6', '100.64.0.9', 'fd7a:115c:a1e0::5-fd7a:115c:a1e0::6', 'fd7a:115c:a1e0::9']);
  });
});

describe('a router whose routes cover tailnet nodes', () => {
  const routerFacts = (route: string): TailnetFacts => ({
    users: [{ id: 1, name: 'alice', email: 'alice@example.com', role: 'owner' }],
    nodes: [
      node(1, 'alice-laptop', { userId: 1 }),
      node(40, 'web', { tags: ['tag:web'] }),
      node(30, 'lab-router', { tags: ['tag:router'], advertisedRoutes: [route], approvedRoutes: [route] }),
    ],
  });
  const routed = `{
    "tagOwners": {"tag:web": [], "tag:router": []},
    "acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:web:80"]}],
  }`;

  it('is a source endpoint of a selection naming a node inside its routes', () => {
    // Packets from alice's address may arrive through the router, so the destination sees it.
    const inside = new PolicyIndex(compilePolicyText(routed), routerFacts('100.64.0.0/28'));
    assert.equal(inside.sees(40, 30), true);
    const outside = new PolicyIndex(compilePolicyText(routed), routerFacts('10.9.0.0/24'));
    assert.equal(outside.sees(40, 30), false);
  });

  it('carries its routes to whoever may reach a node inside them, and back to their destinations', () => {
    const index = new PolicyIndex(compilePolicyText(routed), routerFacts('100.64.0.0/28'));
    // web may answer alice, whose address the router's prefix holds.
    assert.ok(index.peerView(40, 30).AllowedIPs.includes('100.64.0.0/28'));
    const toAlice = `{
      "tagOwners": {"tag:web": [], "tag:router": []},
      "acls": [{"action": "accept", "src": ["tag:web"], "dst": ["alice@example.com:22"]}],
    }`;
    // web may reach alice, inside the prefix.
    assert.ok(new PolicyIndex(compilePolicyText(toAlice), routerFacts('100.64.0.0/28')).peerView(40, 30).AllowedIPs.includes('100.64.0.0/28'));
  });
});
