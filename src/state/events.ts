// What the state layer tells the parts downstream of it (policy index, mapper, sessions) after
// a change is committed. Events are small and past tense; each names exactly what changed so
// that the work done for it can be proportional to the change.
import type { Node, NodeId, TailnetSettings, User } from '../model/index.js';

/**
 * The facets of a node that can change. Live facets (endpoints, derp, discoKey, hostinfo,
 * online, lastSeen) change often and are persisted lazily; the others are committed before the
 * event is published.
 */
export type NodeFacet =
  | 'endpoints'
  | 'derp'
  | 'discoKey'
  | 'hostinfo'
  | 'online'
  | 'lastSeen'
  | 'capVersion'
  | 'nodeKey'
  | 'keyExpiry'
  | 'name'
  | 'tags'
  | 'user'
  | 'advertisedRoutes'
  | 'approvedRoutes'
  /** Device approval: the node joins (or leaves) the tailnet's policy index. */
  | 'approval';

/** Runtime facts about a node that are not durable: whether it holds a map session. */
export interface Presence {
  readonly online: boolean;
  /** Capability version of the node's latest map request; 0 until it has sent one. */
  readonly capVersion: number;
}

export type StateEvent =
  | { readonly kind: 'nodeAdded'; readonly node: Node }
  | { readonly kind: 'nodeRemoved'; readonly node: Node }
  | {
      readonly kind: 'nodeChanged';
      readonly before: Node;
      readonly after: Node;
      readonly facets: ReadonlySet<NodeFacet>;
    }
  | { readonly kind: 'presenceChanged'; readonly nodeId: NodeId; readonly before: Presence; readonly after: Presence }
  | { readonly kind: 'userAdded'; readonly user: User }
  | { readonly kind: 'userChanged'; readonly before: User; readonly after: User }
  | { readonly kind: 'userRemoved'; readonly user: User }
  /** The tailnet's policy text changed (null = no policy: allow all). */
  | { readonly kind: 'policyChanged'; readonly text: string | null }
  /** The tailnet's settings changed (every node's self capabilities may have). */
  | { readonly kind: 'settingsChanged'; readonly before: TailnetSettings; readonly after: TailnetSettings }
  | { readonly kind: 'tailnetDeleted' };

/**
 * Where the change was made: `local` for a write through this process, `remote` for a row
 * another instance committed, applied from the change log (docs/ha.md). Parts that act once per
 * change across all instances (webhooks) act on local ones only; everything else treats both alike.
 */
export type EventOrigin = 'local' | 'remote';

export type StateListener = (event: StateEvent, origin: EventOrigin) => void;
