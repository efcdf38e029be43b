// The parsed policy: what the file says, checked for shape and for references it can check on
// its own (tags, groups, hosts), before any tailnet is known. Every element keeps where it was
// written (`at` = character offset, `path` = JSON path) so later stages can report and explain.
import type { IPPrefix } from '../util/ip.js';
import type { Alias, PortRange } from './alias.js';
import type { PolicySource } from './hujson.js';
import type { PostureCondition } from './posture.js';

export interface Where {
  readonly at: number;
  readonly path: string;
}

/** One selector as written, recognised. */
export interface AliasRef extends Where {
  readonly text: string;
  readonly alias: Alias;
}

/** An ACL destination `host:ports`. */
export interface AclDestination extends AliasRef {
  readonly ports: readonly PortRange[];
}

export interface AclRule extends Where {
  readonly index: number;
  readonly src: readonly AliasRef[];
  readonly dst: readonly AclDestination[];
  /** IANA protocol number, or null for the client default (TCP, UDP, ICMP). */
  readonly proto: number | null;
  readonly srcPosture: readonly string[];
}

/** One entry of a grant's `ip` list. */
export interface IpSpec {
  readonly text: string;
  readonly proto: number | null;
  readonly ports: readonly PortRange[];
}

export interface GrantRule extends Where {
  readonly index: number;
  readonly src: readonly AliasRef[];
  readonly dst: readonly AliasRef[];
  readonly ip: readonly IpSpec[];
  /** Capability name -> values, passed through to CapGrant as written. */
  readonly app: Readonly<Record<string, unknown[]>> | null;
  readonly via: readonly AliasRef[];
  readonly srcPosture: readonly string[];
}

export type SshAction = 'accept' | 'check';

export interface SshRule extends Where {
  readonly index: number;
  readonly action: SshAction;
  readonly src: readonly AliasRef[];
  readonly dst: readonly AliasRef[];
  /** Local users as written: `root`, `autogroup:nonroot`, `localpart:*@domain`, names. */
  readonly users: readonly { readonly text: string; readonly at: number; readonly path: string }[];
  /** null = the default (12h); 0 = always re-check. Milliseconds. */
  readonly checkPeriodMs: number | null;
  readonly acceptEnv: readonly string[] | null;
  readonly srcPosture: readonly string[];
}

export interface NodeAttrRule extends Where {
  readonly index: number;
  readonly target: readonly AliasRef[];
  readonly attr: readonly string[];
  readonly ipPool: readonly IPPrefix[];
}

/** A `tests` entry, kept raw: a malformed entry is a failing test, as in the service. */
export interface PolicyTestCase extends Where {
  readonly index: number;
  readonly src: string | null;
  readonly proto: string | null;
  readonly accept: readonly string[];
  readonly deny: readonly string[];
}

export interface SshTestCase extends Where {
  readonly index: number;
  readonly src: string | null;
  readonly dst: readonly string[];
  readonly accept: readonly string[];
  readonly check: readonly string[];
  readonly deny: readonly string[];
}

export interface AutoApprovers {
  readonly routes: readonly { readonly prefix: IPPrefix; readonly text: string; readonly approvers: readonly AliasRef[] }[];
  readonly exitNode: readonly AliasRef[];
}

export interface HostDef extends Where {
  readonly name: string;
  readonly prefix: IPPrefix;
  readonly single: boolean;
}

export interface Policy {
  readonly source: PolicySource;
  /** False for an empty document: no policy means allow all. */
  readonly present: boolean;
  /** null = the section is absent (different from an empty list: `[]` denies all). */
  readonly acls: readonly AclRule[] | null;
  readonly grants: readonly GrantRule[] | null;
  /** group name -> member logins as written. */
  readonly groups: ReadonlyMap<string, readonly string[]>;
  readonly hosts: ReadonlyMap<string, HostDef>;
  /** tag -> owners (users, groups, tags, autogroups). */
  readonly tagOwners: ReadonlyMap<string, readonly AliasRef[]>;
  /** ipset name -> member prefixes (additions minus removals, resolved). */
  readonly ipsets: ReadonlyMap<string, readonly { readonly prefix: IPPrefix; readonly remove: boolean }[]>;
  /** posture name -> conditions a device must all meet. */
  readonly postures: ReadonlyMap<string, readonly PostureCondition[]>;
  /** Postures applied to acls and grants that name none. */
  readonly defaultSrcPosture: readonly string[];
  readonly autoApprovers: AutoApprovers;
  readonly ssh: readonly SshRule[] | null;
  readonly nodeAttrs: readonly NodeAttrRule[];
  readonly tests: readonly PolicyTestCase[];
  readonly sshTests: readonly SshTestCase[];
  readonly randomizeClientPort: boolean;
  readonly disableIPv4: boolean;
  /** Passed through for the DERP part; not interpreted here. */
  readonly derpMap: unknown;
}
