// What the register and map handlers need from the rest of the server, as interfaces the
// composition root implements: the state, each tailnet's session hub and the policy decisions
// a registration depends on (tagOwners, autoApprovers, key expiry).
import type { Logger } from '../log/index.js';
import type { KeyedRateLimiter } from '../util/rate-limiter.js';
import type { Node, NodeId, TailnetId, User, UserId } from '../model/index.js';
import type { ServerState, TailnetState } from '../state/index.js';
import type { SessionHub } from './session/session-hub.js';

export interface TagDecision {
  readonly allowed: boolean;
  /** The requested tags the owner may not apply. */
  readonly denied: readonly string[];
}

/** One tailnet's control-plane services. */
export interface TailnetServices {
  readonly state: TailnetState;
  readonly hub: SessionHub;
  /** May a node owned by `owner` carry `requested` tags (the policy's tagOwners)? */
  tagsAllowed(owner: { userId: UserId } | { tags: readonly string[] }, requested: readonly string[]): TagDecision;
  /** The advertised routes the policy's autoApprovers approve for a node with these facts. */
  autoApprovedRoutes(node: { userId: UserId | null; tags: readonly string[]; ipv4: string | null; ipv6: string | null }, advertised: readonly string[]): string[];
  /**
   * For an SSH `check` login from `src` to `dst` as `localUser`: the rule's checkPeriod (null:
   * none given), or undefined when no check rule of the current policy lets it.
   */
  sshCheckPeriodMs(src: NodeId, dst: NodeId, localUser: string): number | null | undefined;
  /** Key expiry for a newly authenticated node: tagged nodes never expire by default. */
  defaultKeyExpiry(tagged: boolean, now: Date): Date | null;
  /** A map session of `node` ended; the node goes offline after a grace period unless it reconnects. */
  sessionEnded(node: Node): void;
  /** A map session of `node` started with this capability version. */
  sessionStarted(node: Node, capVersion: number): void;
}

export interface ControlBackend {
  readonly state: ServerState;
  /** `http(s)://host[:port]` as clients reach the server; AuthURLs are built on it. */
  readonly serverUrl: string;
  readonly logger: Logger;
  services(tailnet: TailnetId): TailnetServices;
  /**
   * Re-authenticates a known user through the identity provider (SSH check mode); absent when
   * no provider is configured, and check rules are then rejected.
   */
  readonly reauthenticate?: (tailnetId: TailnetId, userId: UserId) => Promise<{ url: string; result: Promise<User> }>;
  /** Bounds on POST /machine/register; absent = unlimited. */
  readonly registrationLimits?: {
    readonly perAddress: KeyedRateLimiter;
    readonly perKey: KeyedRateLimiter;
  };
}
