// Policy edits on a real tailnet (SQLite store, state, TailnetPolicy): seeded sequences of the
// edits admins make (a rule added, removed, changed or moved; a group's members, a tag's owners,
// a host's address, an SSH rule, a node attribute, a grant) are saved through setPolicy, and
// after each one the running index (updated in place when the edit keeps every node's class)
// must answer every per-node query exactly as an index built from scratch, and the delta it
// handed to the sessions must equal the node-by-node diff of the indexes before and after.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Curve25519PrivateKey } from '../key/index.js';
import { silentLogger } from '../log/index.js';
import type { NodeId, UserId } from '../model/index.js';
import { compilePolicyText, diffIndexes, PolicyIndex, type PolicyDelta } from '../policy/index.js';
import { ServerState, type Actor, type TailnetState } from '../state/index.js';
import { openTestStore } from '../store/testing.js';
import { seededRandom } from '../util/random.js';
import { TailnetPolicy, tailnetFacts } from './tailnet-policy.js';

const ADMIN: Actor = { name: 'policy-edit-test' };
const WIRE = { selfAsWildcard: true } as const;
const CAPS = { selfAsWildcard: true, sourceCaps: true } as const;

interface AclRule { action: 'accept'; src: string[]; dst: string[]; proto?: string }
interface SshRule { action: 'accept' | 'check'; src: string[]; dst: string[]; users: string[] }
interface Grant { src: string[]; dst: string[]; ip?: string[]; app?: Record<string, unknown[]>; via?: string[] }
interface PolicyDoc {
  groups: Record<string, string[]>;
  tagOwners: Record<string, string[]>;
  hosts: Record<string, string>;
  acls: AclRule[];
  grants: Grant[];
  ssh: SshRule[];
  nodeAttrs: { target: string[]; attr: string[] }[];
}

const LOGINS = ['alice@example.com', 'bob@example.com', 'carol@example.com', 'dave@example.org', 'erin@example.com', 'frank@example.net'];
const TAGS = ['tag:web', 'tag:db', 'tag:router', 'tag:exit', 'tag:ssh'];
const SOURCES = ['group:eng', 'group:ops', 'tag:web', 'tag:db', 'tag:router', 'autogroup:member', 'autogroup:tagged', 'autogroup:admin', 'alice@example.com', 'dave@example.org', '*', 'printer', '100.64.0.0/29'];
const DESTINATIONS = ['tag:web:80,443', 'tag:db:5432', 'tag:ssh:22', 'group:eng:*', 'group:ops:8080', '*:22', 'autogroup:self:*', 'printer:*', '10.1.0.0/16:443', '192.168.1.0/24:*', 'autogroup:internet:*', 'tag:router:*', 'autogroup:member:3000-3010'];
const SSH_SOURCES = ['group:eng', 'group:ops', 'autogroup:member', 'tag:web', 'carol@example.com'];
const SSH_DESTINATIONS = ['autogroup:self', 'tag:db', 'tag:web', 'tag:ssh'];
const SSH_USERS = ['root', 'autogroup:nonroot', 'ubuntu', 'localpart:*@example.com'];
const ATTRS = ['disable-ipv4', 'funnel', 'randomize-client-port'];

function initialDoc(): PolicyDoc {
  return {
    groups: { 'group:eng': ['alice@example.com', 'bob@example.com', 'erin@example.com'], 'group:ops': ['carol@example.com', 'dave@example.org'] },
    tagOwners: { 'tag:web': ['group:eng'], 'tag:db': ['group:ops'], 'tag:router': ['group:ops'], 'tag:exit': ['group:ops'], 'tag:ssh': ['group:ops'] },
    hosts: { printer: '100.64.0.7' },
    acls: [
      { action: 'accept', src: ['group:eng'], dst: ['tag:web:80,443', 'printer:*'] },
      { action: 'accept', src: ['group:ops'], dst: ['*:*'] },
      { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] },
      { action: 'accept', src: ['tag:web'], proto: 'tcp', dst: ['tag:db:5432'] },
      { action: 'accept', src: ['group:eng'], dst: ['10.1.0.0/16:443', 'autogroup:internet:*'] },
    ],
    grants: [{ src: ['group:ops'], dst: ['tag:web'], app: { 'example.com/cap/admin': [{}] } }],
    ssh: [
      { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self'], users: ['autogroup:nonroot'] },
      { action: 'check', src: ['group:ops'], dst: ['tag:db', 'tag:web'], users: ['root'] },
    ],
    nodeAttrs: [{ target: ['tag:db'], attr: ['disable-ipv4'] }],
  };
}

type EditKind = 'addRule' | 'removeRule' | 'changeRule' | 'moveRule' | 'groupMember' | 'tagOwner' | 'host' | 'ssh' | 'nodeAttr' | 'grant';
const EDITS: readonly [EditKind, number][] = [
  ['addRule', 5], ['removeRule', 3], ['changeRule', 4], ['moveRule', 1], ['groupMember', 2],
  ['tagOwner', 2], ['host', 1], ['ssh', 3], ['nodeAttr', 1], ['grant', 2],
];

/** Sources autogroup:self destinations accept: users, groups and member autogroups. */
const SELF_SOURCES = new Set(['group:eng', 'group:ops', 'autogroup:member', 'autogroup:admin', 'alice@example.com', 'dave@example.org']);

function selfSources(rule: AclRule): void {
  if (!rule.dst.some((d) => d.startsWith('autogroup:self'))) return;
  rule.src = rule.src.filter((s) => SELF_SOURCES.has(s));
  if (rule.src.length === 0) rule.src = ['autogroup:member'];
}

/** Applies one random edit of the kind drawn to the document; returns its label. */
function edit(doc: PolicyDoc, random: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  let draw = random() * EDITS.reduce((s, [, w]) => s + w, 0);
  let kind: EditKind = EDITS[0]![0];
  for (const [k, w] of EDITS) {
    if ((draw -= w) < 0) {
      kind = k;
      break;
    }
  }
  switch (kind) {
    case 'addRule': {
      const rule: AclRule = { action: 'accept', src: [pick(SOURCES)], dst: [pick(DESTINATIONS)] };
      if (random() < 0.3) rule.src.push(pick(SOURCES));
      if (random() < 0.2) rule.proto = 'tcp';
      selfSources(rule);
      doc.acls.splice(Math.floor(random() * (doc.acls.length + 1)), 0, rule);
      return `add rule ${JSON.stringify(rule)}`;
    }
    case 'removeRule':
      if (doc.acls.length <= 1) return 'keep the last rule';
      return `remove rule ${JSON.stringify(doc.acls.splice(Math.floor(random() * doc.acls.length), 1))}`;
    case 'changeRule': {
      const rule = pick(doc.acls);
      if (random() < 0.5) rule.dst = [pick(DESTINATIONS)];
      else rule.src = [pick(SOURCES)];
      selfSources(rule);
      return `change rule to ${JSON.stringify(rule)}`;
    }
    case 'moveRule': {
      const [rule] = doc.acls.splice(Math.floor(random() * doc.acls.length), 1);
      doc.acls.splice(Math.floor(random() * (doc.acls.length + 1)), 0, rule!);
      return `move rule ${JSON.stringify(rule)}`;
    }
    case 'groupMember': {
      const group = pick(Object.keys(doc.groups));
      const login = pick(LOGINS);
      const members = doc.groups[group]!;
      if (members.includes(login) && members.length > 1) members.splice(members.indexOf(login), 1);
      else if (!members.includes(login)) members.push(login);
      return `${group} is now ${members.join(' ')}`;
    }
    case 'tagOwner': {
      const tag = pick(TAGS);
      doc.tagOwners[tag] = random() < 0.5 ? [pick(['group:eng', 'group:ops', 'autogroup:admin'])] : [pick(LOGINS), 'group:ops'];
      return `${tag} owned by ${doc.tagOwners[tag]!.join(' ')}`;
    }
    case 'host':
      doc.hosts['printer'] = pick(['100.64.0.7', '100.64.0.3', '100.64.0.9']);
      return `printer is ${doc.hosts['printer']}`;
    case 'ssh': {
      const roll = random();
      if (roll < 0.35 || doc.ssh.length === 0) {
        const rule: SshRule = { action: pick(['accept', 'check'] as const), src: [pick(SSH_SOURCES)], dst: [pick(SSH_DESTINATIONS)], users: [pick(SSH_USERS)] };
        // autogroup:self destinations take only user sources.
        if (rule.dst[0] === 'autogroup:self' && rule.src[0]!.startsWith('tag:')) rule.src = ['autogroup:member'];
        doc.ssh.push(rule);
        return `add ssh ${JSON.stringify(rule)}`;
      }
      if (roll < 0.6) return `remove ssh ${JSON.stringify(doc.ssh.splice(Math.floor(random() * doc.ssh.length), 1))}`;
      const rule = pick(doc.ssh);
      rule.users = [pick(SSH_USERS)];
      rule.action = pick(['accept', 'check'] as const);
      return `change ssh to ${JSON.stringify(rule)}`;
    }
    case 'nodeAttr':
      if (doc.nodeAttrs.length > 0 && random() < 0.4) return `remove attr ${JSON.stringify(doc.nodeAttrs.pop())}`;
      doc.nodeAttrs.push({ target: [pick(['tag:web', 'tag:db', 'group:eng', 'autogroup:member'])], attr: [pick(ATTRS)] });
      return `add attr ${JSON.stringify(doc.nodeAttrs[doc.nodeAttrs.length - 1])}`;
    case 'grant': {
      if (doc.grants.length > 0 && random() < 0.4) return `remove grant ${JSON.stringify(doc.grants.splice(Math.floor(random() * doc.grants.length), 1))}`;
      const grant: Grant = random() < 0.5
        ? { src: [pick(SOURCES)], dst: [pick(['tag:web', 'tag:db', 'group:eng'])], app: { 'example.com/cap/admin': [{ level: pick(['read', 'write']) }] } }
        : { src: [pick(['group:eng', 'autogroup:member'])], dst: ['10.1.0.0/16'], ip: ['*'], via: ['tag:router'] };
      doc.grants.push(grant);
      return `add grant ${JSON.stringify(grant)}`;
    }
  }
}

/** A tailnet of users with several devices, tagged servers, HA subnet routers, an exit node and perhaps a router into the tailnet's own range. */
async function populate(tailnet: TailnetState, labRouter: boolean): Promise<void> {
  const users = new Map<string, UserId>();
  const roles = ['admin', 'member', 'admin', 'member', 'member', 'member'] as const;
  for (const [i, login] of LOGINS.entries()) {
    const user = await tailnet.createUser({ name: login.split('@')[0]!, email: login, role: roles[i]! }, ADMIN);
    users.set(login, user.id);
  }
  const add = async (name: string, owner: { userId: UserId } | { tags: string[] }, routes: string[] = []): Promise<void> => {
    const node = await tailnet.addNode({
      machineKey: Curve25519PrivateKey.generate().publicKey('machine'),
      nodeKey: Curve25519PrivateKey.generate().publicKey('node'),
      hostinfo: { Hostname: name, ...(routes.length > 0 ? { RoutableIPs: routes } : {}) },
      userId: 'userId' in owner ? owner.userId : null,
      tags: 'tags' in owner ? owner.tags : [],
      approvedRoutes: routes,
      keyExpiry: null,
      ephemeral: false,
      registerMethod: 'cli',
    }, ADMIN);
    tailnet.setPresence(node.id as NodeId, { online: true, capVersion: 113 });
  };
  for (const [i, login] of LOGINS.entries()) {
    for (let d = 0; d < 1 + (i % 3); d++) await add(`${login.split('@')[0]}-${d}`, { userId: users.get(login)! });
  }
  for (let i = 0; i < 3; i++) await add(`web-${i}`, { tags: ['tag:web'] });
  for (let i = 0; i < 2; i++) await add(`db-${i}`, { tags: ['tag:db'] });
  await add('ssh-0', { tags: ['tag:ssh'] });
  await add('web-db', { tags: ['tag:web', 'tag:db'] });
  for (let i = 0; i < 2; i++) await add(`router-${i}`, { tags: ['tag:router'] }, ['10.1.0.0/16']);
  await add('exit-0', { tags: ['tag:exit'] }, ['0.0.0.0/0', '::/0']);
  await add('home-router', { userId: users.get('bob@example.com')! }, ['192.168.1.0/24']);
  // Routes over part of the tailnet's own addresses: the router is an endpoint of the
  // selections naming the nodes inside, and nodes inside do not change class in place.
  if (labRouter) await add('lab-router', { tags: ['tag:router'] }, ['100.64.0.0/28']);
}

const json = (v: unknown): string => JSON.stringify(v);
const sortedIds = (ids: Iterable<number>): number[] => [...ids].sort((a, b) => a - b);

function normalDelta(d: PolicyDelta): unknown {
  const map = (m: ReadonlyMap<number, readonly number[]>): [number, number[]][] =>
    [...m].filter(([, v]) => v.length > 0).map(([k, v]): [number, number[]] => [k, sortedIds(new Set(v))]).sort((a, b) => a[0] - b[0]);
  return {
    gained: map(d.gained),
    lost: map(d.lost),
    viewChanged: map(d.viewChanged),
    filterChanged: sortedIds(new Set(d.filterChanged)),
    sshChanged: sortedIds(new Set(d.sshChanged)),
    selfChanged: sortedIds(new Set(d.selfChanged)),
    sourceCapsChanged: sortedIds(new Set(d.sourceCapsChanged)),
  };
}

/** Every per-node output of the two indexes; the first difference, or null. */
function firstDifference(running: PolicyIndex, fresh: PolicyIndex): string | null {
  const ids = sortedIds(fresh.nodeIds());
  if (json(sortedIds(running.nodeIds())) !== json(ids)) return 'node ids differ';
  for (const id of ids) {
    const pairs: [string, unknown, unknown][] = [
      ['peersOf', sortedIds(running.peersOf(id)), sortedIds(fresh.peersOf(id))],
      ['filterFor', running.filterFor(id), fresh.filterFor(id)],
      ['filterFor wire', running.filterFor(id, WIRE), fresh.filterFor(id, WIRE)],
      ['filterFor caps', running.filterFor(id, CAPS), fresh.filterFor(id, CAPS)],
      ['sshPolicyFor', running.sshPolicyFor(id), fresh.sshPolicyFor(id)],
      ['selfView', running.selfView(id), fresh.selfView(id)],
      ['sourceCapsOf', running.sourceCapsOf(id), fresh.sourceCapsOf(id)],
    ];
    for (const [what, got, want] of pairs) if (json(got) !== json(want)) return `${what}(${id}):\n  got  ${json(got)}\n  want ${json(want)}`;
    for (const peer of fresh.peersOf(id)) {
      if (json(running.peerView(id, peer)) !== json(fresh.peerView(id, peer))) return `peerView(${id}, ${peer}) differs`;
    }
  }
  // Filter keys must still name filters: equal keys, equal filters.
  const byKey = new Map<string, string>();
  for (const id of ids) {
    const key = running.filterKey(id, CAPS);
    const filter = json(running.filterFor(id, CAPS));
    if ((byKey.get(key) ?? filter) !== filter) return `filterKey ${key} names two filters`;
    byKey.set(key, filter);
  }
  return null;
}

describe('policy edits on a running tailnet (sqlite)', () => {
  for (const labRouter of [false, true]) {
    it(`leave the index equal to a fresh build and hand sessions the exact delta, edit after edit${labRouter ? ' (a router into the tailnet range)' : ''}`, async (t) => {
      const { store, cleanup } = await openTestStore('sqlite');
      t.after(cleanup);
      const state = await ServerState.load(store, { flushIntervalMs: 0 });
      t.after(() => state.close());
      const tailnet = state.defaultTailnet;
      await populate(tailnet, labRouter);
      let kept = 0;
      let rebuilt = 0;
      for (const seed of [1, 2, 3, 4, 5, 6]) {
        const random = seededRandom(seed);
        const doc = initialDoc();
        await tailnet.setPolicy(JSON.stringify(doc), ADMIN, { persist: true });
        const policy = new TailnetPolicy(tailnet, silentLogger());
        const deltas: PolicyDelta[] = [];
        const unsubscribe = tailnet.subscribe((event) => {
          deltas.push(policy.apply(event) as unknown as PolicyDelta);
        });
        try {
          for (let step = 0; step < 40; step++) {
            const before = new PolicyIndex(policy.index.compiled, tailnetFacts(tailnet));
            const label = edit(doc, random);
            const text = JSON.stringify(doc);
            if (text === tailnet.policyText) continue;
            const keptBefore = policy.index.classesKept;
            deltas.length = 0;
            await tailnet.setPolicy(text, ADMIN, { persist: true });
            assert.equal(deltas.length, 1, `seed ${seed} step ${step} (${label}): one policy change event`);
            if (policy.index.classesKept > keptBefore) kept++;
            else rebuilt++;
            const fresh = new PolicyIndex(compilePolicyText(text), tailnetFacts(tailnet));
            const where = `seed ${seed} step ${step} (${label})`;
            const difference = firstDifference(policy.index, fresh);
            assert.equal(difference, null, `${where}: ${difference}`);
            assert.equal(json(normalDelta(deltas[0]!)), json(normalDelta(diffIndexes(before, fresh))), `${where}: delta`);
          }
        } finally {
          unsubscribe();
        }
      }
      // Both paths ran: edits that kept (or only refined) the classes, and edits that rebuilt them.
      t.diagnostic(`kept ${kept}, rebuilt ${rebuilt}`);
      assert.ok(kept >= 100, `edits that kept the classes: ${kept}`);
      assert.ok(rebuilt >= 10, `edits that rebuilt the classes: ${rebuilt}`);
    });
  }
});
