// How the policy engine normalises what a policy and a topology say, rule by rule, as the
// service's captures show it: surrounding whitespace in a selector or an SSH login is trimmed,
// names and actions are case-sensitive, empty values are errors, and a topology's
// `approved_routes` are taken as recorded (autoApprovers do not serve a route the topology
// records as not approved). Each rule is a table: padded and plain policies compile to the
// same outputs, rejected spellings are rejected with the service's message.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileTopology, type CompileResult } from './index.js';
import { stable } from './testing.js';

const TOPOLOGY = {
  users: [
    { id: 1, name: 'odin', email: 'odin@example.com' },
    { id: 2, name: 'thor', email: 'thor@example.org' },
  ],
  nodes: {
    laptop: { user: 'odin', ipv4: '100.64.0.1', ipv6: 'fd7a:115c:a1e0::1', created: '2026-05-01T10:00:00Z' },
    phone: { user: 'thor', ipv4: '100.64.0.2', ipv6: 'fd7a:115c:a1e0::2', created: '2026-05-01T10:00:01Z' },
    server: { tags: ['tag:server'], ipv4: '100.64.0.3', ipv6: 'fd7a:115c:a1e0::3', created: '2026-05-01T10:00:02Z' },
    router: {
      tags: ['tag:router'], ipv4: '100.64.0.4', ipv6: 'fd7a:115c:a1e0::4', created: '2026-05-01T10:00:03Z',
      routable_ips: ['10.33.0.0/16', '10.44.0.0/16'], approved_routes: ['10.44.0.0/16'],
    },
  },
};

function policy(parts: { src?: string; dst?: string; sshSrc?: string; sshDst?: string; sshUser?: string; action?: string; grantSrc?: string }): string {
  return JSON.stringify({
    tagOwners: { 'tag:server': ['odin@example.com'], 'tag:router': ['odin@example.com'] },
    autoApprovers: { routes: { '10.33.0.0/16': ['tag:router'] } },
    acls: [{ action: 'accept', src: [parts.src ?? 'odin@example.com'], dst: [parts.dst ?? 'tag:server:22'] }],
    grants: [{ src: [parts.grantSrc ?? 'thor@example.org'], dst: ['10.44.0.0/16'], ip: ['443'] }],
    ssh: [{ action: parts.action ?? 'accept', src: [parts.sshSrc ?? 'odin@example.com'], dst: [parts.sshDst ?? 'tag:server'], users: [parts.sshUser ?? 'root'] }],
  });
}

function compiled(text: string): CompileResult {
  return compileTopology(text, TOPOLOGY, { file: 'policy.hujson' });
}

const PADDINGS = [' ', '  ', '\t', ' \t '];

describe('normalisation: surrounding whitespace is trimmed', () => {
  const plain = compiled(policy({}));
  it('compiles the plain policy', () => assert.equal(plain.rejected, false, plain.rejected ? plain.error : ''));
  const fields = [
    ['acl src', (v: string) => ({ src: v }), 'odin@example.com'],
    ['acl dst', (v: string) => ({ dst: v }), 'tag:server:22'],
    ['grant src', (v: string) => ({ grantSrc: v }), 'thor@example.org'],
    ['ssh src', (v: string) => ({ sshSrc: v }), 'odin@example.com'],
    ['ssh dst', (v: string) => ({ sshDst: v }), 'tag:server'],
    ['ssh user', (v: string) => ({ sshUser: v }), 'root'],
    ['ssh action', (v: string) => ({ action: v }), 'accept'],
  ] as const;
  for (const [name, part, value] of fields) {
    it(`${name}: padded with whitespace, the same outputs`, () => {
      for (const pad of PADDINGS) {
        for (const padded of [`${pad}${value}`, `${value}${pad}`, `${pad}${value}${pad}`]) {
          const got = compiled(policy(part(padded)));
          assert.equal(stable(got), stable(plain), `${name} ${JSON.stringify(padded)}`);
        }
      }
    });
  }

  it('an SSH login is sent trimmed, as the service sends it', () => {
    const got = compiled(policy({ sshUser: ' ubuntu ' }));
    assert.equal(got.rejected, false);
    if (got.rejected) return;
    // root maps to "" (refused) unless named, as in every rule the service sends.
    assert.deepEqual(got.nodes['server']!.ssh_rules[0]!.sshUsers, { root: '', ubuntu: 'ubuntu' });
  });
});

describe('normalisation: case and empty values', () => {
  const rejected: [string, Parameters<typeof policy>[0], string][] = [
    ['an action in another case', { action: 'Accept' }, '"Accept" is not a valid action'],
    ['an upper-case action', { action: 'ACCEPT' }, '"ACCEPT" is not a valid action'],
    ['an empty ssh user', { sshUser: '' }, 'user "" is not valid'],
    ['a whitespace-only ssh user', { sshUser: '   ' }, 'user "" is not valid'],
    ['the wildcard as ssh user', { sshUser: '*' }, 'user "*" is not valid'],
    ['an empty action', { action: '' }, 'action must be specified'],
    ['a tag named in another case', { sshDst: 'tag:Server' }, 'tag:Server'],
  ];
  for (const [what, parts, message] of rejected) {
    it(`rejects ${what}`, () => {
      const got = compiled(policy(parts));
      assert.equal(got.rejected, true, `${what} was accepted`);
      if (got.rejected) assert.ok(got.error.includes(message), got.error);
    });
  }
});

describe('normalisation: approved routes are taken as recorded', () => {
  it('does not serve a route the topology records as not approved, though an autoApprover covers it', () => {
    const got = compiled(policy({}));
    assert.equal(got.rejected, false);
    if (got.rejected) return;
    const self = got.nodes['router']!.self;
    assert.ok(self.AllowedIPs.includes('10.44.0.0/16'));
    assert.ok(!self.AllowedIPs.includes('10.33.0.0/16'), 'auto-approvable but unapproved route served');
    assert.deepEqual(self.PrimaryRoutes, ['10.44.0.0/16']);
    const peer = got.nodes['phone']!.peers.find((p) => p.name === 'router')!;
    assert.ok(!peer.AllowedIPs.includes('10.33.0.0/16'));
  });
});
