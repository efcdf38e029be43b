import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyError, parsePolicy, type PolicyErrorKind } from './index.js';
import { errorTables } from '../util/headway-error.js';

function expectError(text: string, kind: PolicyErrorKind, message: string | RegExp): PolicyError {
  try {
    parsePolicy(text);
  } catch (err) {
    assert.ok(err instanceof PolicyError, `not a PolicyError: ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return err;
  }
  assert.fail(`accepted: ${text}`);
}

describe('parsePolicy', () => {
  it('accepts HuJSON comments and trailing commas', () => {
    const p = parsePolicy('// company policy\n{\n  "acls": [\n    {"action": "accept", "src": ["*"], "dst": ["*:*"],}, /* all */\n  ],\n}\n');
    assert.equal(p.acls?.length, 1);
  });

  it('treats an empty document as no policy', () => {
    const p = parsePolicy('  // nothing yet\n');
    assert.equal(p.present, false);
    assert.equal(p.acls, null);
  });

  it('matches top-level keys case-insensitively, as Tailscale decodes them', () => {
    const p = parsePolicy('{"ACLs": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}');
    assert.equal(p.acls?.length, 1);
  });

  const errors: Array<{ name: string; text: string; kind: PolicyErrorKind; message: string | RegExp }> = [
    {
      name: 'a syntax error with its line and column',
      text: '{\n  "acls": [\n    {"action": "accept", "src": ["*"] "dst": ["*:*"]}\n  ]\n}',
      kind: 'syntax',
      message: 'policy.hujson:3:39: invalid HuJSON: expected "," between entries',
    },
    {
      name: 'an unknown top-level field',
      text: '{\n  "acl": []\n}',
      kind: 'unknownField',
      message: /^policy\.hujson:2:3: acl: unknown field "acl" in the policy; known fields: acls, grants/,
    },
    {
      name: 'an unknown field inside a rule',
      text: '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"], "port": 22}]}',
      kind: 'unknownField',
      message: /acls\[0\]\.port: unknown field "port" in an acl/,
    },
    {
      name: 'a value of the wrong type',
      text: '{\n  "acls": {"a": 1}\n}',
      kind: 'invalidType',
      message: 'policy.hujson:2:11: acls: want a list, got an object',
    },
    {
      name: 'a malformed tag name, in the service wording',
      text: '{\n  "tagOwners": {"tag:сервер": ["odin@example.com"]}\n}',
      kind: 'invalidValue',
      message: `policy.hujson:2:17: tagOwners["tag:сервер"]: tag names must start with a letter, after 'tag:'`,
    },
    {
      name: 'a tag without an owner as a source',
      text: '{\n  "acls": [\n    {"action": "accept", "src": ["tag:db"], "dst": ["*:*"]}\n  ]\n}',
      kind: 'unknownReference',
      message: 'policy.hujson:3:34: acls[0].src[0]: src=tag not found: "tag:db"; add it to tagOwners',
    },
    {
      name: 'a tag without an owner as a destination',
      text: '{\n  "acls": [\n    {"action": "accept", "src": ["*"],\n     "dst": ["tag:db:5432"]}\n  ]\n}',
      kind: 'unknownReference',
      message: 'policy.hujson:4:14: acls[0].dst[0]: dst="tag:db": tag not found: "tag:db"; add it to tagOwners',
    },
    {
      name: 'an undefined group',
      text: '{"acls": [{"action": "accept", "src": ["group:ops"], "dst": ["*:*"]}]}',
      kind: 'unknownReference',
      message: /acls\[0\]\.src\[0\]: src=group not found: "group:ops"; define it in groups/,
    },
    {
      name: 'an undefined host',
      text: '{"acls": [{"action": "accept", "src": ["*"], "dst": ["db:5432"]}]}',
      kind: 'unknownReference',
      message: /acls\[0\]\.dst\[0\]: "db": invalid address \(not an IP, a CIDR or a name defined in hosts\)/,
    },
    {
      name: 'autogroup:self as a source',
      text: '{"acls": [{"action": "accept", "src": ["autogroup:self"], "dst": ["*:*"]}]}',
      kind: 'invalidSelector',
      message: /acls\[0\]\.src\[0\]: "autogroup:self" not valid on the src side of a rule/,
    },
    {
      name: 'autogroup:self with a tag source',
      text: '{"tagOwners": {"tag:ci": []}, "acls": [{"action": "accept", "src": ["tag:ci"], "dst": ["autogroup:self:*"]}]}',
      kind: 'invalidSelector',
      message: /autogroup:self can only be used with users, groups, or supported autogroups/,
    },
    {
      name: 'a deny action',
      text: '{"acls": [{"action": "deny", "src": ["*"], "dst": ["*:*"]}]}',
      kind: 'invalidValue',
      message: /acls\[0\]\.action: action="deny" is not supported/,
    },
    {
      name: 'a port that is not a number',
      text: '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:ssh"]}]}',
      kind: 'invalidPorts',
      message: /dst="\*:ssh": port range "ssh": invalid first integer/,
    },
    {
      name: 'port zero',
      text: '{"grants": [{"src": ["*"], "dst": ["*"], "ip": ["tcp:0"]}]}',
      kind: 'invalidPorts',
      message: /grants\[0\]\.ip\[0\]: port range "0": first port must be >0, or use '\*' for wildcard/,
    },
    {
      name: 'a grant with neither ip nor app',
      text: '{"grants": [{"src": ["*"], "dst": ["*"]}]}',
      kind: 'invalidValue',
      message: /grants\[0\]: ip and app can not both be empty/,
    },
    {
      name: 'a reserved capability',
      text: '{"grants": [{"src": ["*"], "dst": ["*"], "app": {"tailscale.com/cap/funnel": [{}]}}]}',
      kind: 'invalidCapability',
      message: /capability name must not be in the tailscale\.com domain/,
    },
    {
      name: 'a capability that is not domain/path',
      text: '{"grants": [{"src": ["*"], "dst": ["*"], "app": {"https://example.com/cap": [{}]}}]}',
      kind: 'invalidCapability',
      message: /capability name must have the form \{domain\}\/\{path\}/,
    },
    {
      name: 'all addresses as a destination',
      text: '{"grants": [{"src": ["*"], "dst": ["0.0.0.0/0"], "ip": ["*"]}]}',
      kind: 'invalidSelector',
      message: /dst "0\.0\.0\.0\/0": to allow all IP addresses, use "\*" or "autogroup:internet"/,
    },
    {
      name: 'ssh without users',
      text: '{"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": []}]}',
      kind: 'invalidSsh',
      message: /ssh\[0\]\.users: users must be specified/,
    },
    {
      name: 'an ssh check period above a week',
      text: '{"ssh": [{"action": "check", "checkPeriod": "200h", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"]}]}',
      kind: 'invalidSsh',
      message: /ssh\[0\]\.checkPeriod: checkPeriod 200h0m0s is above the max \(168h\)/,
    },
    {
      name: 'an ssh action in the wrong case',
      text: '{"ssh": [{"action": "Accept", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"]}]}',
      kind: 'invalidSsh',
      message: /"Accept" is not a valid action/,
    },
    {
      name: 'a nested group',
      text: '{"groups": {"group:outer": ["group:inner"], "group:inner": ["thor@example.org"]}}',
      kind: 'invalidValue',
      message: /groups\["group:outer"\]: "group:inner": group members cannot be recursive/,
    },
  ];
  for (const { name, text, kind, message } of errors) {
    it(`rejects ${name}`, () => {
      const err = expectError(text, kind, message);
      assert.ok(err.location !== null && err.location.line >= 1 && err.location.column >= 1);
      assert.match(err.code, /^HW_POLICY_[A-Z_]+$/);
    });
  }

  it('reports every problem at once, the first one first', () => {
    const err = expectError(
      '{\n  "acls": [\n    {"action": "deny", "src": ["*"], "dst": ["*:*"]},\n    {"action": "accept", "src": ["tag:x"], "dst": ["*:*"]}\n  ]\n}',
      'invalidValue',
      /^policy\.hujson:3:16: acls\[0\]\.action: action="deny" is not supported.*\npolicy\.hujson:4:34: acls\[1\]\.src\[0\]: src=tag not found: "tag:x"/s,
    );
    assert.equal(err.location?.line, 3);
  });

  it('rejects ssh from tagged devices to user-owned devices', () => {
    expectError(
      '{"tagOwners": {"tag:ci": []}, "ssh": [{"action": "accept", "src": ["tag:ci"], "dst": ["autogroup:member"], "users": ["root"]}]}',
      'invalidSelector',
      /ssh\[0\]\.dst\[0\]: tags in SSH source cannot access autogroup:member \(user-owned devices\)/,
    );
    expectError(
      '{"ssh": [{"action": "accept", "src": ["autogroup:member"], "dst": ["alice@example.com"], "users": ["root"]}]}',
      'invalidSelector',
      /user destination requires source to contain only that same user "alice@example\.com"/,
    );
  });

  it('declares every error code once, with meaning and fix', () => {
    const codes = errorTables.flatMap((t) => Object.values(t)).filter((s) => s.code.startsWith('HW_POLICY_'));
    assert.ok(codes.length >= 10);
    assert.equal(new Set(codes.map((c) => c.code)).size, codes.length);
    for (const c of codes) assert.ok(c.meaning.length > 0 && c.fix.length > 0 && c.status >= 400, c.code);
  });
});
