// Reads a policy file into a checked Policy: HuJSON syntax, the shape of every section, unknown
// fields, and every rule that can be checked without knowing the tailnet (tags are owned,
// groups and hosts exist, selectors stand where they are allowed, ports and protocols parse,
// capability names are legal). Messages name file:line:column and the JSON path, and contain
// the wording Tailscale's service uses for the same mistake.
import { type IPPrefix, formatPrefix, isExitRoute } from '../util/ip.js';
import {
  type Alias,
  type PortRange,
  AUTOGROUPS,
  ROLE_AUTOGROUPS,
  parseAddressOrPrefix,
  parseAlias,
  parsePorts,
  parseProtocol,
  protocolAllowsPorts,
  protocolError,
  splitHostPorts,
} from './alias.js';
import { type JsonNode, PolicySource, nodeValue, parseHuJson } from './hujson.js';
import { PolicyError, type PolicyErrorKind } from './errors.js';
import { parseGoDurationMs, formatGoDuration } from './go-duration.js';
import { parsePostureCondition, type PostureCondition } from './posture.js';
import type {
  AclDestination,
  AclRule,
  AliasRef,
  AutoApprovers,
  GrantRule,
  HostDef,
  IpSpec,
  NodeAttrRule,
  Policy,
  PolicyTestCase,
  SshRule,
  SshTestCase,
} from './syntax.js';

export interface ParseOptions {
  /** Name used in error locations; default `policy.hujson`. */
  readonly file?: string;
}

const TOP_LEVEL_FIELDS = [
  'acls',
  'grants',
  'groups',
  'hosts',
  'tagOwners',
  'ipsets',
  'postures',
  'defaultSrcPosture',
  'autoApprovers',
  'ssh',
  'sshTests',
  'nodeAttrs',
  'tests',
  'randomizeClientPort',
  'disableIPv4',
  'derpMap',
  'OneCGNATRoute',
] as const;

/** Capabilities in the tailscale.com domain that grants may hand out. */
const ALLOWED_TAILSCALE_CAPS: ReadonlySet<string> = new Set([
  'tailscale.com/cap/drive',
  'tailscale.com/cap/relay',
  'tailscale.com/cap/webui',
  'tailscale.com/cap/kubernetes',
  'tailscale.com/cap/tsidp',
  'tailscale.com/cap/secrets',
  'tailscale.com/cap/golink',
  'tailscale.com/cap/tailsql',
]);

/** The SSH check period may not exceed a week (Tailscale's limit). */
const MAX_CHECK_PERIOD_MS = 168 * 3600 * 1000;

/** Tailscale reserves 100.100.100.0/24 (quad-100 services) inside the CGNAT range. */
const RESERVED_POOLS: readonly IPPrefix[] = [
  { addr: { family: 4, value: 0x64646400n }, bits: 24 },
  { addr: { family: 4, value: 0x64735c00n }, bits: 23 },
];

interface Field {
  readonly key: string;
  readonly keyNode: JsonNode;
  readonly node: JsonNode;
  readonly path: string;
}

/** Which list a selector stands in; decides what is allowed and how errors are worded. */
type Side = 'src' | 'dst' | 'target' | 'tagOwner' | 'approver' | 'sshSrc' | 'sshDst';

interface StringAt {
  readonly text: string;
  readonly at: number;
  readonly path: string;
}

export function parsePolicy(text: string, options: ParseOptions = {}): Policy {
  const source = new PolicySource(text, options.file ?? 'policy.hujson');
  const root = parseHuJson(source);
  return new PolicyReader(source).read(root);
}

class PolicyReader {
  readonly #src: PolicySource;
  #groups = new Map<string, string[]>();
  #hosts = new Map<string, HostDef>();
  #tags = new Set<string>();
  #ipsets = new Map<string, { prefix: IPPrefix; remove: boolean }[]>();
  #postures = new Map<string, PostureCondition[]>();

  readonly #errors: PolicyError[] = [];

  constructor(source: PolicySource) {
    this.#src = source;
  }

  /** Runs one unit of reading; a PolicyError is recorded and reading goes on. */
  #attempt<T>(read: () => T): T | undefined {
    try {
      return read();
    } catch (err) {
      if (err instanceof PolicyError) {
        this.#errors.push(err);
        return undefined;
      }
      throw err;
    }
  }

  /** Reads each element of a list, skipping (and recording) the ones with errors. */
  #each<T>(field: Field, read: (item: Field, index: number) => T): T[] {
    const out: T[] = [];
    this.#list(field).forEach((item, index) => {
      const value = this.#attempt(() => read(item, index));
      if (value !== undefined) out.push(value);
    });
    return out;
  }

  fail(kind: PolicyErrorKind, detail: string, at: JsonNode | number | null, path: string): never {
    throw this.#src.error(kind, detail, at, path);
  }

  read(root: JsonNode | null): Policy {
    const empty: Policy = {
      source: this.#src,
      present: false,
      acls: null,
      grants: null,
      groups: new Map(),
      hosts: new Map(),
      tagOwners: new Map(),
      ipsets: new Map(),
      postures: new Map(),
      defaultSrcPosture: [],
      autoApprovers: { routes: [], exitNode: [] },
      ssh: null,
      nodeAttrs: [],
      tests: [],
      sshTests: [],
      randomizeClientPort: false,
      disableIPv4: false,
      derpMap: null,
    };
    if (root === null) return empty;
    const top = this.#fields(root, '', TOP_LEVEL_FIELDS, 'the policy');

    // Definitions first: rules refer to them. Every problem is collected (one per rule at
    // most) and reported together, so a policy with several mistakes is fixed in one pass.
    const tagOwnerNodes = top.get('tagOwners');
    const tagOwnerKeys = tagOwnerNodes ? (this.#attempt(() => this.#objectEntries(tagOwnerNodes.node, 'tagOwners')) ?? []) : [];
    for (const entry of tagOwnerKeys) {
      const valid = this.#attempt(() => {
        this.#checkTagName(entry.key, entry.keyNode, `tagOwners[${JSON.stringify(entry.key)}]`);
        return true;
      });
      if (valid === true) this.#tags.add(entry.key);
    }
    if (top.has('groups')) this.#attempt(() => this.#readGroups(top.get('groups')!));
    if (top.has('hosts')) this.#attempt(() => this.#readHosts(top.get('hosts')!));
    if (top.has('ipsets')) this.#attempt(() => this.#readIpsets(top.get('ipsets')!));
    if (top.has('postures')) this.#attempt(() => this.#readPostures(top.get('postures')!));
    const tagOwners = new Map<string, AliasRef[]>();
    for (const entry of tagOwnerKeys) tagOwners.set(entry.key, this.#attempt(() => this.#readTagOwners(entry)) ?? []);
    const defaultSrcPosture: string[] = [];
    if (top.has('defaultSrcPosture')) {
      this.#attempt(() => {
        for (const posture of this.#stringList(top.get('defaultSrcPosture')!)) {
          this.#checkPosture(posture);
          defaultSrcPosture.push(posture.text);
        }
      });
    }

    const acls = top.has('acls') ? (this.#attempt(() => this.#readAcls(top.get('acls')!)) ?? []) : null;
    const grants = top.has('grants') ? (this.#attempt(() => this.#readGrants(top.get('grants')!)) ?? []) : null;
    const ssh = top.has('ssh') ? (this.#attempt(() => this.#readSsh(top.get('ssh')!)) ?? []) : null;
    const nodeAttrs = top.has('nodeAttrs') ? (this.#attempt(() => this.#readNodeAttrs(top.get('nodeAttrs')!)) ?? []) : [];
    const autoApprovers = top.has('autoApprovers') ? (this.#attempt(() => this.#readAutoApprovers(top.get('autoApprovers')!)) ?? empty.autoApprovers) : empty.autoApprovers;
    const tests = top.has('tests') ? (this.#attempt(() => this.#readTests(top.get('tests')!)) ?? []) : [];
    const sshTests = top.has('sshTests') ? (this.#attempt(() => this.#readSshTests(top.get('sshTests')!)) ?? []) : [];
    const randomizeClientPort = top.has('randomizeClientPort') ? (this.#attempt(() => this.#bool(top.get('randomizeClientPort')!)) ?? false) : false;
    const disableIPv4 = top.has('disableIPv4') ? (this.#attempt(() => this.#bool(top.get('disableIPv4')!)) ?? false) : false;
    if (this.#errors.length > 0) throw combineErrors(this.#errors);

    return {
      source: this.#src,
      present: true,
      acls,
      grants,
      groups: this.#groups,
      hosts: this.#hosts,
      tagOwners,
      ipsets: this.#ipsets,
      postures: this.#postures,
      defaultSrcPosture,
      autoApprovers,
      ssh,
      nodeAttrs,
      tests,
      sshTests,
      randomizeClientPort,
      disableIPv4,
      derpMap: top.has('derpMap') ? nodeValue(top.get('derpMap')!.node) : null,
    };
  }

  // --- generic shape helpers ----------------------------------------------------------------

  /**
   * The fields of an object, matched to `allowed` case-insensitively as Tailscale's JSON
   * decoding does. Keys starting with `#` are comments in rule entries when `allowComments`.
   */
  #fields(node: JsonNode, path: string, allowed: readonly string[], what: string, allowComments = false): Map<string, Field> {
    if (node.type !== 'object') this.fail('invalidType', `want an object for ${what}, got ${describe(node)}`, node, path);
    const canonical = new Map(allowed.map((name) => [name.toLowerCase(), name]));
    const out = new Map<string, Field>();
    for (const prop of node.children ?? []) {
      const [keyNode, valueNode] = prop.children ?? [];
      if (keyNode === undefined || valueNode === undefined) continue;
      const key = String(keyNode.value);
      if (allowComments && key.startsWith('#')) continue;
      const name = canonical.get(key.toLowerCase());
      const fieldPath = path === '' ? key : `${path}.${key}`;
      if (name === undefined) {
        this.fail('unknownField', `unknown field ${JSON.stringify(key)} in ${what}; known fields: ${allowed.join(', ')}`, keyNode, fieldPath);
      }
      out.set(name, { key: name, keyNode, node: valueNode, path: path === '' ? name : `${path}.${name}` });
    }
    return out;
  }

  #objectEntries(node: JsonNode, path: string): Field[] {
    if (node.type !== 'object') this.fail('invalidType', `want an object, got ${describe(node)}`, node, path);
    const out: Field[] = [];
    for (const prop of node.children ?? []) {
      const [keyNode, valueNode] = prop.children ?? [];
      if (keyNode === undefined || valueNode === undefined) continue;
      const key = String(keyNode.value);
      out.push({ key, keyNode, node: valueNode, path: `${path}[${JSON.stringify(key)}]` });
    }
    return out;
  }

  /** A list; JSON null reads as an empty list. */
  #list(field: { node: JsonNode; path: string }): Field[] {
    const { node, path } = field;
    if (node.type === 'null') return [];
    if (node.type !== 'array') this.fail('invalidType', `want a list, got ${describe(node)}`, node, path);
    return (node.children ?? []).map((child, i) => ({ key: String(i), keyNode: child, node: child, path: `${path}[${i}]` }));
  }

  #string(field: { node: JsonNode; path: string }): string {
    if (field.node.type !== 'string') this.fail('invalidType', `want a string, got ${describe(field.node)}`, field.node, field.path);
    return String(field.node.value);
  }

  #stringList(field: { node: JsonNode; path: string }): StringAt[] {
    return this.#list(field).map((item) => ({ text: this.#string(item), at: item.node.offset, path: item.path }));
  }

  #bool(field: Field): boolean {
    if (field.node.type !== 'boolean') this.fail('invalidType', `want true or false, got ${describe(field.node)}`, field.node, field.path);
    return field.node.value === true;
  }

  // --- definitions ----------------------------------------------------------------------------

  #checkTagName(tag: string, at: JsonNode, path: string): void {
    if (!tag.startsWith('tag:')) this.fail('invalidValue', `tag names must start with 'tag:'`, at, path);
    const name = tag.slice(4);
    if (!/^[A-Za-z]/.test(name)) this.fail('invalidValue', `tag names must start with a letter, after 'tag:'`, at, path);
    if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(name)) this.fail('invalidValue', 'tag names can only contain numbers, letters, or dashes', at, path);
  }

  #readGroups(field: Field): void {
    const entries = this.#objectEntries(field.node, 'groups');
    for (const entry of entries) {
      if (!entry.key.startsWith('group:')) this.fail('invalidValue', `group names must start with "group:"`, entry.keyNode, entry.path);
      this.#groups.set(entry.key, []);
    }
    // The service rejects any group inside a group. With several offenders it names the last
    // one in key order; we walk keys from the end so the first one we meet is that one.
    const descending = [...entries].sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
    for (const entry of descending) {
      for (const member of this.#stringList(entry)) {
        if (member.text.startsWith('group:')) {
          this.fail('invalidValue', `groups[${JSON.stringify(entry.key)}]: ${JSON.stringify(member.text)}: group members cannot be recursive`, member.at, entry.path);
        }
      }
    }
    for (const entry of entries) {
      const members: string[] = [];
      for (const member of this.#stringList(entry)) {
        const text = member.text.trim();
        if (text.startsWith('tag:') || text.startsWith('autogroup:') || !text.includes('@')) {
          this.fail('invalidValue', `${JSON.stringify(member.text)}: group members must be users (user@example.com or name@)`, member.at, member.path);
        }
        members.push(text);
      }
      this.#groups.set(entry.key, members);
    }
  }

  #readHosts(field: Field): void {
    for (const entry of this.#objectEntries(field.node, 'hosts')) {
      const text = this.#string(entry);
      const parsed = parseAddressOrPrefix(text);
      if (parsed === null) this.fail('invalidValue', `${JSON.stringify(text)}: invalid address; want an IP address or CIDR`, entry.node, entry.path);
      if (entry.key.includes(':') || entry.key.includes('@') || entry.key === '*') {
        this.fail('invalidValue', `host names cannot contain ":" or "@"`, entry.keyNode, entry.path);
      }
      this.#hosts.set(entry.key, { name: entry.key, prefix: parsed.prefix, single: parsed.single, at: entry.node.offset, path: entry.path });
    }
  }

  #readIpsets(field: Field): void {
    const entries = this.#objectEntries(field.node, 'ipsets');
    for (const entry of entries) {
      if (!entry.key.startsWith('ipset:')) this.fail('invalidValue', `ipset names must start with "ipset:"`, entry.keyNode, entry.path);
    }
    for (const entry of entries) {
      const members: { prefix: IPPrefix; remove: boolean }[] = [];
      for (const item of this.#stringList(entry)) {
        let text = item.text.trim();
        let remove = false;
        if (text.startsWith('add ')) text = text.slice(4).trim();
        else if (text.startsWith('remove ')) {
          text = text.slice(7).trim();
          remove = true;
        }
        const host = this.#hosts.get(text);
        const nested = this.#ipsets.get(text);
        if (host !== undefined) members.push({ prefix: host.prefix, remove });
        else if (nested !== undefined) for (const m of nested) members.push({ prefix: m.prefix, remove: remove !== m.remove });
        else {
          const parsed = parseAddressOrPrefix(text);
          if (parsed === null) this.fail('invalidValue', `${JSON.stringify(item.text)}: invalid address`, item.at, item.path);
          members.push({ prefix: parsed.prefix, remove });
        }
      }
      this.#ipsets.set(entry.key, members);
    }
  }

  #readPostures(field: Field): void {
    for (const entry of this.#objectEntries(field.node, 'postures')) {
      if (!entry.key.startsWith('posture:')) this.fail('invalidValue', `posture names must start with "posture:"`, entry.keyNode, entry.path);
      const conditions: PostureCondition[] = [];
      for (const item of this.#stringList(entry)) {
        const parsed = parsePostureCondition(item.text);
        if (typeof parsed === 'string') this.fail('invalidValue', `invalid posture condition ${parsed}`, item.at, item.path);
        conditions.push(parsed);
      }
      this.#postures.set(entry.key, conditions);
    }
  }

  #checkPosture(posture: StringAt): void {
    if (!this.#postures.has(posture.text)) {
      this.fail('unknownReference', `posture ${JSON.stringify(posture.text)} not found; define it in postures`, posture.at, posture.path);
    }
  }

  #readTagOwners(entry: Field): AliasRef[] {
    const owners: AliasRef[] = [];
    for (const owner of this.#stringList(entry)) {
      const ref = this.#alias(owner, 'tagOwner');
      const a = ref.alias;
      if (a.kind === 'tag' && !this.#tags.has(a.name)) {
        this.fail('unknownReference', `tagOwners[${JSON.stringify(entry.key)}]: tag not found: ${JSON.stringify(a.name)}`, owner.at, owner.path);
      }
      if (a.kind !== 'user' && a.kind !== 'group' && a.kind !== 'tag' && !(a.kind === 'autogroup' && (ROLE_AUTOGROUPS.has(a.name) || a.name === 'member'))) {
        this.fail('invalidSelector', `${JSON.stringify(owner.text)}: tag owners must be users, groups, tags or role autogroups`, owner.at, owner.path);
      }
      owners.push(ref);
    }
    return owners;
  }

  // --- selectors ------------------------------------------------------------------------------

  /**
   * Recognises a selector and checks that what it names exists. `side` decides the wording of
   * errors the service words per side (`src=tag not found: ...`).
   */
  #alias(item: StringAt, side: Side): AliasRef {
    const text = item.text.trim();
    const parsed = parseAlias(text);
    if (!parsed.ok) this.fail('invalidValue', `${JSON.stringify(item.text)}: invalid address`, item.at, item.path);
    const alias = parsed.alias;
    const ref: AliasRef = { text, alias, at: item.at, path: item.path };
    switch (alias.kind) {
      case 'tag':
        if (!this.#tags.has(alias.name)) {
          const detail =
            side === 'src' || side === 'sshSrc'
              ? `src=tag not found: ${JSON.stringify(alias.name)}`
              : side === 'dst' || side === 'sshDst'
                ? `dst=${JSON.stringify(alias.name)}: tag not found: ${JSON.stringify(alias.name)}`
                : `tag not found: ${JSON.stringify(alias.name)}`;
          this.fail('unknownReference', `${detail}; add it to tagOwners`, item.at, item.path);
        }
        break;
      case 'group':
        // `group:<name>@<domain>` names a group synced from the identity provider (OIDC claim
        // or SCIM), as Tailscale writes synced groups; its members come from the users.
        if (!this.#groups.has(alias.name) && !isSyncedGroupName(alias.name)) {
          const prefix = side === 'src' || side === 'sshSrc' ? 'src=' : side === 'dst' || side === 'sshDst' ? 'dst=' : '';
          this.fail('unknownReference', `${prefix}group not found: ${JSON.stringify(alias.name)}; define it in groups (or write a group synced from the identity provider as group:<name>@<domain>)`, item.at, item.path);
        }
        break;
      case 'host':
        if (!this.#hosts.has(alias.name)) {
          this.fail('unknownReference', `${JSON.stringify(alias.name)}: invalid address (not an IP, a CIDR or a name defined in hosts)`, item.at, item.path);
        }
        break;
      case 'ipset':
        if (!this.#ipsets.has(alias.name)) this.fail('unknownReference', `ipset not found: ${JSON.stringify(alias.name)}`, item.at, item.path);
        break;
      case 'autogroup':
        if (!(AUTOGROUPS as readonly string[]).includes(alias.name)) {
          this.fail('invalidSelector', `autogroup ${JSON.stringify(text)} is not valid; known: ${AUTOGROUPS.map((a) => `autogroup:${a}`).join(', ')}`, item.at, item.path);
        }
        break;
      default:
        break;
    }
    return ref;
  }

  #aliasList(field: Field | undefined, side: Side): AliasRef[] {
    if (field === undefined) return [];
    return this.#stringList(field).map((item) => this.#alias(item, side));
  }

  /** Checks a rule's sources: no autogroup:self or destination-only autogroups. */
  #checkSources(src: readonly AliasRef[]): void {
    for (const ref of src) {
      const a = ref.alias;
      if (a.kind === 'autogroup') {
        if (a.name === 'self' || a.name === 'internet' || a.name === 'nonroot') {
          this.fail('invalidSelector', `${JSON.stringify(ref.text)} not valid on the src side of a rule`, ref.at, ref.path);
        }
      }
    }
  }

  /**
   * autogroup:self narrows to the source user's own devices, so its sources must identify
   * users: users, groups, autogroup:member, role autogroups, and (ACLs only) `*`.
   */
  #checkSelfSources(src: readonly AliasRef[], dst: readonly { alias: Alias }[], allowWildcard: boolean, where: { at: number; path: string }): void {
    if (!dst.some((d) => d.alias.kind === 'autogroup' && d.alias.name === 'self')) return;
    for (const ref of src) {
      const a = ref.alias;
      const fine =
        a.kind === 'user' ||
        a.kind === 'group' ||
        a.kind === 'userDomain' ||
        (a.kind === 'autogroup' && (a.name === 'member' || ROLE_AUTOGROUPS.has(a.name))) ||
        (allowWildcard && a.kind === 'wildcard');
      if (!fine) {
        this.fail(
          'invalidSelector',
          `autogroup:self can only be used with users, groups, or supported autogroups (src ${JSON.stringify(ref.text)} is not one)`,
          ref.at,
          ref.path || where.path,
        );
      }
    }
  }

  #checkDestination(ref: AliasRef, display: string): void {
    const a = ref.alias;
    if (a.kind === 'autogroup' && a.name === 'danger-all') {
      this.fail('invalidSelector', 'cannot use autogroup:danger-all as a dst', ref.at, ref.path);
    }
    if (a.kind === 'autogroup' && a.name === 'nonroot') {
      this.fail('invalidSelector', `${JSON.stringify(display)}: autogroup:nonroot is only valid in ssh users`, ref.at, ref.path);
    }
    const prefix = this.#literalPrefix(a);
    if (prefix !== null && isExitRoute(prefix)) {
      this.fail('invalidSelector', `dst ${JSON.stringify(formatPrefix(prefix))}: to allow all IP addresses, use "*" or "autogroup:internet"`, ref.at, ref.path);
    }
  }

  #literalPrefix(a: Alias): IPPrefix | null {
    if (a.kind === 'prefix') return a.prefix;
    if (a.kind === 'host') return this.#hosts.get(a.name)?.prefix ?? null;
    return null;
  }

  #readSrcPosture(fields: Map<string, Field>): string[] {
    const field = fields.get('srcPosture');
    if (field === undefined) return [];
    const postures = this.#stringList(field);
    for (const p of postures) this.#checkPosture(p);
    return postures.map((p) => p.text);
  }

  // --- acls -----------------------------------------------------------------------------------

  #readAcls(field: Field): AclRule[] {
    return this.#each(field, (item, index) => {
      const f = this.#fields(item.node, item.path, ['action', 'src', 'dst', 'proto', 'srcPosture', 'users', 'ports'], 'an acl', true);
      const actionField = f.get('action');
      const action = actionField ? this.#string(actionField) : '';
      if (action !== 'accept') {
        this.fail('invalidValue', `action=${JSON.stringify(action)} is not supported; Tailscale policies only have "accept" rules`, actionField?.node ?? item.node, actionField?.path ?? item.path);
      }
      // `users` and `ports` are the legacy spellings of src and dst.
      const src = this.#aliasList(f.get('src') ?? f.get('users'), 'src');
      this.#checkSources(src);
      let proto: number | null = null;
      const protoField = f.get('proto');
      if (protoField !== undefined) {
        const text = this.#string(protoField);
        if (text !== '') {
          const parsed = parseProtocol(text);
          if (parsed === null) this.fail('invalidPorts', protocolError(text), protoField.node, protoField.path);
          proto = parsed;
        }
      }
      const dstField = f.get('dst') ?? f.get('ports');
      const dst: AclDestination[] = [];
      for (const d of dstField ? this.#stringList(dstField) : []) {
        const text = d.text.trim();
        const split = splitHostPorts(text);
        if (split === null) {
          this.fail('invalidPorts', `dst=${JSON.stringify(d.text)}: missing port; want host:port (use host:* for all ports)`, d.at, d.path);
        }
        const ports = parsePorts(split.ports);
        if (!ports.ok) this.fail('invalidPorts', `dst=${JSON.stringify(d.text)}: ${ports.message}`, d.at, d.path);
        if (proto !== null && !protocolAllowsPorts(proto) && !(ports.ports.length === 1 && ports.ports[0]!.first === 0 && ports.ports[0]!.last === 65535)) {
          this.fail('invalidPorts', `dst=${JSON.stringify(d.text)}: protocol ${proto} has no ports; use ${split.host}:*`, d.at, d.path);
        }
        const ref = this.#alias({ text: split.host, at: d.at, path: d.path }, 'dst');
        this.#checkDestination(ref, d.text);
        dst.push({ ...ref, ports: ports.ports });
      }
      this.#checkSelfSources(src, dst, true, { at: item.node.offset, path: item.path });
      return { index, at: item.node.offset, path: item.path, src, dst, proto, srcPosture: this.#readSrcPosture(f) };
    });
  }

  // --- grants ---------------------------------------------------------------------------------

  #readGrants(field: Field): GrantRule[] {
    return this.#each(field, (item, index) => {
      const f = this.#fields(item.node, item.path, ['src', 'dst', 'ip', 'app', 'via', 'srcPosture'], 'a grant', true);
      const src = this.#aliasList(f.get('src'), 'src');
      this.#checkSources(src);
      const dst = this.#aliasList(f.get('dst'), 'dst');
      for (const d of dst) this.#checkDestination(d, d.text);
      const ip: IpSpec[] = [];
      const ipField = f.get('ip');
      for (const entry of ipField ? this.#stringList(ipField) : []) ip.push(this.#ipSpec(entry));
      let app: Record<string, unknown[]> | null = null;
      const appField = f.get('app');
      if (appField !== undefined && appField.node.type !== 'null') app = this.#readApp(appField);
      if (ip.length === 0 && (app === null || Object.keys(app).length === 0)) {
        this.fail('invalidValue', 'ip and app can not both be empty', item.node, item.path);
      }
      if (app !== null && dst.some((d) => d.alias.kind === 'autogroup' && d.alias.name === 'internet')) {
        this.fail('invalidSelector', 'cannot use app grants with autogroup:internet', appField!.node, appField!.path);
      }
      const via: AliasRef[] = [];
      const viaField = f.get('via');
      for (const v of viaField ? this.#stringList(viaField) : []) {
        const text = v.text.trim();
        if (!text.startsWith('tag:')) this.fail('invalidSelector', `via can only be a tag, got ${JSON.stringify(v.text)}`, v.at, v.path);
        if (!this.#tags.has(text)) this.fail('unknownReference', `tag ${JSON.stringify(text)} not found; add it to tagOwners`, v.at, v.path);
        via.push({ text, alias: { kind: 'tag', name: text }, at: v.at, path: v.path });
      }
      this.#checkSelfSources(src, dst, false, { at: item.node.offset, path: item.path });
      return { index, at: item.node.offset, path: item.path, src, dst, ip, app, via, srcPosture: this.#readSrcPosture(f) };
    });
  }

  #ipSpec(entry: StringAt): IpSpec {
    const text = entry.text.trim();
    if (text === '*') return { text, proto: null, ports: [{ first: 0, last: 65535 }] };
    const colon = text.indexOf(':');
    let proto: number | null = null;
    let portsText = text;
    if (colon !== -1) {
      if (text.indexOf(':', colon + 1) !== -1) {
        this.fail('invalidPorts', `expected only one colon in Internet protocol and port type, got ${JSON.stringify(text)}`, entry.at, entry.path);
      }
      const protoText = text.slice(0, colon);
      portsText = text.slice(colon + 1);
      const parsed = parseProtocol(protoText);
      if (parsed === null) this.fail('invalidPorts', protocolError(protoText), entry.at, entry.path);
      proto = parsed;
    }
    const ports = parsePorts(portsText);
    if (!ports.ok) this.fail('invalidPorts', ports.message, entry.at, entry.path);
    if (proto !== null && !protocolAllowsPorts(proto) && portsText !== '*') {
      this.fail('invalidPorts', `ip ${JSON.stringify(text)}: protocol ${proto} has no ports; write it with :*`, entry.at, entry.path);
    }
    return { text, proto, ports: ports.ports };
  }

  #readApp(field: Field): Record<string, unknown[]> {
    const app: Record<string, unknown[]> = {};
    for (const entry of this.#objectEntries(field.node, field.path)) {
      const name = entry.key;
      if (name.includes('://') || !/^[^/\s]+\.[^/\s]+\/\S+$/.test(name)) {
        this.fail('invalidCapability', `${JSON.stringify(name)}: capability name must have the form {domain}/{path}`, entry.keyNode, entry.path);
      }
      const domain = name.slice(0, name.indexOf('/'));
      if ((domain === 'tailscale.com' || domain.endsWith('.tailscale.com')) && !ALLOWED_TAILSCALE_CAPS.has(name)) {
        this.fail('invalidCapability', `${JSON.stringify(name)}: capability name must not be in the tailscale.com domain`, entry.keyNode, entry.path);
      }
      if (entry.node.type === 'null') app[name] = [];
      else if (entry.node.type !== 'array') this.fail('invalidType', `want a list of capability values, got ${describe(entry.node)}`, entry.node, entry.path);
      else app[name] = (entry.node.children ?? []).map(nodeValue);
    }
    return app;
  }

  // --- ssh ------------------------------------------------------------------------------------

  #readSsh(field: Field): SshRule[] {
    return this.#each(field, (item, index) => {
      const f = this.#fields(
        item.node,
        item.path,
        ['action', 'src', 'dst', 'users', 'checkPeriod', 'acceptEnv', 'srcPosture', 'recorder', 'enforceRecorder'],
        'an ssh rule',
        true,
      );
      const actionField = f.get('action');
      const action = actionField ? this.#string(actionField).trim() : '';
      if (action === '') this.fail('invalidSsh', 'action must be specified ("accept" or "check")', actionField?.node ?? item.node, actionField?.path ?? item.path);
      if (action !== 'accept' && action !== 'check') {
        this.fail('invalidSsh', `${JSON.stringify(action)} is not a valid action; want "accept" or "check"`, actionField!.node, actionField!.path);
      }
      const src = this.#aliasList(f.get('src'), 'sshSrc');
      this.#checkSources(src);
      const dst = this.#aliasList(f.get('dst'), 'sshDst');
      for (const d of dst) {
        const a = d.alias;
        const allowed =
          a.kind === 'tag' ||
          a.kind === 'user' ||
          a.kind === 'group' ||
          a.kind === 'userDomain' ||
          (a.kind === 'autogroup' && (a.name === 'self' || a.name === 'member' || a.name === 'tagged' || ROLE_AUTOGROUPS.has(a.name)));
        if (!allowed) this.fail('invalidSelector', `invalid dst ${JSON.stringify(d.text)}: ssh destinations must be tags, users or autogroups`, d.at, d.path);
      }
      this.#checkSshCombination(src, dst);
      const usersField = f.get('users');
      // The service trims an SSH login name as it trims every selector: " root" is root.
      const users = usersField ? this.#stringList(usersField).map((u) => ({ ...u, text: u.text.trim() })) : [];
      if (users.length === 0) this.fail('invalidSsh', 'users must be specified', usersField?.node ?? item.node, usersField?.path ?? item.path);
      for (const u of users) {
        if (u.text === '' || u.text === '*') this.fail('invalidSsh', `user ${JSON.stringify(u.text)} is not valid`, u.at, u.path);
      }
      let checkPeriodMs: number | null = null;
      const cp = f.get('checkPeriod');
      if (cp !== undefined && cp.node.type !== 'null' && action !== 'check') {
        this.fail('invalidSsh', 'checkPeriod is only valid with action "check"', cp.node, cp.path);
      }
      if (cp !== undefined && cp.node.type !== 'null') {
        const text = this.#string(cp);
        if (text === 'always') checkPeriodMs = 0;
        else {
          const parsed = parseGoDurationMs(text);
          if (parsed === null) this.fail('invalidSsh', `checkPeriod: time: invalid duration ${JSON.stringify(text)}`, cp.node, cp.path);
          if (parsed < 0) this.fail('invalidSsh', `checkPeriod ${formatGoDuration(parsed)} must be a positive duration`, cp.node, cp.path);
          if (parsed > MAX_CHECK_PERIOD_MS) this.fail('invalidSsh', `checkPeriod ${formatGoDuration(parsed)} is above the max (168h)`, cp.node, cp.path);
          checkPeriodMs = parsed;
        }
      }
      let acceptEnv: string[] | null = null;
      const envField = f.get('acceptEnv');
      if (envField !== undefined && envField.node.type !== 'null') {
        acceptEnv = this.#stringList(envField).map((e) => {
          if (e.text === '') this.fail('invalidSsh', 'acceptEnv values cannot be empty', e.at, e.path);
          return e.text;
        });
      }
      return {
        index,
        at: item.node.offset,
        path: item.path,
        action,
        src,
        dst,
        users: users.map((u) => ({ text: u.text, at: u.at, path: u.path })),
        checkPeriodMs,
        acceptEnv,
        srcPosture: this.#readSrcPosture(f),
      };
    });
  }

  /**
   * Tailscale SSH's identity rules: a tagged source may not log in to user-owned devices (a
   * user, autogroup:member or autogroup:self destination), and a user destination is only
   * reachable from that same user.
   */
  #checkSshCombination(src: readonly AliasRef[], dst: readonly AliasRef[]): void {
    const tagged = src.some((s) => s.alias.kind === 'tag' || (s.alias.kind === 'autogroup' && s.alias.name === 'tagged'));
    const groups = src.some((s) => s.alias.kind === 'group' || (s.alias.kind === 'autogroup' && s.alias.name === 'member'));
    const users = new Set(src.flatMap((s) => (s.alias.kind === 'user' ? [s.alias.login] : [])));
    for (const d of dst) {
      const a = d.alias;
      if (a.kind === 'user') {
        if (tagged) {
          this.fail('invalidSelector', `tags in SSH source cannot access user-owned devices (${a.login}); use autogroup:tagged or specific tags as destinations instead`, d.at, d.path);
        }
        if (groups || users.size !== 1 || !users.has(a.login)) {
          this.fail('invalidSelector', `user destination requires source to contain only that same user ${JSON.stringify(a.login)}; use autogroup:self instead for same-user SSH access`, d.at, d.path);
        }
      } else if (a.kind === 'autogroup' && a.name === 'self' && tagged) {
        this.fail('invalidSelector', 'autogroup:self destination requires source to contain only users or groups, not tags or autogroup:tagged', d.at, d.path);
      } else if (a.kind === 'autogroup' && a.name === 'member' && tagged) {
        this.fail('invalidSelector', 'tags in SSH source cannot access autogroup:member (user-owned devices)', d.at, d.path);
      }
    }
  }

  // --- nodeAttrs, autoApprovers -------------------------------------------------------------

  #readNodeAttrs(field: Field): NodeAttrRule[] {
    return this.#each(field, (item, index) => {
      const f = this.#fields(item.node, item.path, ['target', 'attr', 'ipPool', 'app'], 'a nodeAttrs entry', true);
      const target = this.#aliasList(f.get('target'), 'target');
      for (const t of target) {
        const a = t.alias;
        if (a.kind === 'autogroup' && (a.name === 'self' || a.name === 'internet' || a.name === 'nonroot')) {
          this.fail('invalidSelector', `${JSON.stringify(t.text)} is not a valid nodeAttrs target`, t.at, t.path);
        }
      }
      const attr = f.get('attr') ? this.#stringList(f.get('attr')!).map((a) => a.text) : [];
      const ipPool: IPPrefix[] = [];
      for (const pool of f.get('ipPool') ? this.#stringList(f.get('ipPool')!) : []) {
        const parsed = parseAddressOrPrefix(pool.text.trim());
        if (parsed === null) this.fail('invalidValue', `IPPool(${pool.text}): invalid prefix`, pool.at, pool.path);
        if (RESERVED_POOLS.some((r) => overlapsPrefix(r, parsed.prefix))) {
          this.fail('invalidValue', `IPPool(${formatPrefix(parsed.prefix)}): network within reserved range`, pool.at, pool.path);
        }
        ipPool.push(parsed.prefix);
      }
      return { index, at: item.node.offset, path: item.path, target, attr, ipPool };
    });
  }

  #readAutoApprovers(field: Field): AutoApprovers {
    const f = this.#fields(field.node, field.path, ['routes', 'exitNode'], 'autoApprovers');
    const routes: { prefix: IPPrefix; text: string; approvers: AliasRef[] }[] = [];
    if (f.has('routes')) {
      for (const entry of this.#objectEntries(f.get('routes')!.node, 'autoApprovers.routes')) {
        const parsed = parseAddressOrPrefix(entry.key);
        if (parsed === null) this.fail('invalidValue', `${JSON.stringify(entry.key)}: invalid route prefix`, entry.keyNode, entry.path);
        routes.push({ prefix: parsed.prefix, text: entry.key, approvers: this.#approvers(entry) });
      }
    }
    const exitNode = f.has('exitNode') ? this.#approvers(f.get('exitNode')!) : [];
    return { routes, exitNode };
  }

  #approvers(field: Field): AliasRef[] {
    return this.#stringList(field).map((item) => {
      const ref = this.#alias(item, 'approver');
      const a = ref.alias;
      if (!(a.kind === 'user' || a.kind === 'group' || a.kind === 'tag' || (a.kind === 'autogroup' && (a.name === 'member' || ROLE_AUTOGROUPS.has(a.name))))) {
        this.fail('invalidSelector', `${JSON.stringify(item.text)}: approvers must be users, groups or tags`, item.at, item.path);
      }
      return ref;
    });
  }

  // --- tests ----------------------------------------------------------------------------------

  #readTests(field: Field): PolicyTestCase[] {
    return this.#each(field, (item, index) => {
      const f = this.#fields(item.node, item.path, ['src', 'srcPostureAttrs', 'proto', 'accept', 'deny'], 'a tests entry', true);
      return {
        index,
        at: item.node.offset,
        path: item.path,
        src: f.has('src') ? this.#string(f.get('src')!) : null,
        proto: f.has('proto') ? this.#protoText(f.get('proto')!) : null,
        accept: f.has('accept') ? this.#stringList(f.get('accept')!).map((s) => s.text) : [],
        deny: f.has('deny') ? this.#stringList(f.get('deny')!).map((s) => s.text) : [],
      };
    });
  }

  #protoText(field: Field): string {
    if (field.node.type === 'number') return String(field.node.value);
    return this.#string(field);
  }

  #readSshTests(field: Field): SshTestCase[] {
    return this.#each(field, (item, index) => {
      const f = this.#fields(item.node, item.path, ['src', 'srcPostureAttrs', 'dst', 'accept', 'check', 'deny'], 'an sshTests entry', true);
      const dst = f.has('dst') ? this.#stringList(f.get('dst')!) : [];
      for (const d of dst) {
        const parsed = parseAlias(d.text.trim());
        if (parsed.ok && parsed.alias.kind === 'prefix' && !parsed.alias.single) {
          this.fail('invalidValue', `SSH tests dst contains disallowed element ${JSON.stringify(d.text)}; name a host, tag or user`, d.at, d.path);
        }
        if (parsed.ok && parsed.alias.kind === 'tag' && !this.#tags.has(parsed.alias.name)) {
          this.fail('unknownReference', `SSH tests dst contains unknown tag ${JSON.stringify(d.text)}`, d.at, d.path);
        }
        if (parsed.ok && parsed.alias.kind === 'autogroup' && parsed.alias.name === 'internet') {
          this.fail('invalidValue', `SSH tests dst contains disallowed element ${JSON.stringify(d.text)}`, d.at, d.path);
        }
      }
      return {
        index,
        at: item.node.offset,
        path: item.path,
        src: f.has('src') ? this.#string(f.get('src')!) : null,
        dst: dst.map((d) => d.text),
        accept: f.has('accept') ? this.#stringList(f.get('accept')!).map((s) => s.text) : [],
        check: f.has('check') ? this.#stringList(f.get('check')!).map((s) => s.text) : [],
        deny: f.has('deny') ? this.#stringList(f.get('deny')!).map((s) => s.text) : [],
      };
    });
  }
}

/** One error carrying every problem found: the first one's kind and location, then the rest. */
function combineErrors(errors: readonly PolicyError[]): PolicyError {
  if (errors.length === 1) return errors[0]!;
  const first = errors[0]!;
  const rest = errors.slice(1).map((e) => e.message);
  return new PolicyError(first.kind, `${first.detail}\n${rest.join('\n')}`, first.location);
}

function overlapsPrefix(a: IPPrefix, b: IPPrefix): boolean {
  if (a.addr.family !== b.addr.family) return false;
  const bits = Math.min(a.bits, b.bits);
  const total = a.addr.family === 4 ? 32 : 128;
  const shift = BigInt(total - bits);
  return a.addr.value >> shift === b.addr.value >> shift;
}

function describe(node: JsonNode): string {
  switch (node.type) {
    case 'object':
      return 'an object';
    case 'array':
      return 'a list';
    case 'string':
      return `the string ${JSON.stringify(node.value)}`;
    case 'number':
      return `the number ${String(node.value)}`;
    case 'boolean':
      return String(node.value);
    default:
      return 'null';
  }
}

export type { PortRange };

/** `group:<name>@<domain>`: a group synced from the identity provider, not defined in groups. */
export function isSyncedGroupName(text: string): boolean {
  return /^group:[^@\s]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/.test(text);
}
