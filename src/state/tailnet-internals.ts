// What TailnetState lends the modules that carry out part of its job (SCIM group writes, rows
// another instance committed): its store, in-memory maps, write mutex, publishing and audit. One
// tailnet's model stays owned by TailnetState; these modules change it only through this.
import type { NodePublicKey } from '../key/index.js';
import type { Node, NodeId, Tailnet, TailnetId, User, UserId } from '../model/index.js';
import type { Store, StoreTx } from '../store/types.js';
import type { Actor } from './actor.js';
import type { EventOrigin, Presence, StateEvent } from './events.js';

/** Keeps the server-wide indexes current as a tailnet's nodes change. */
export interface TailnetStateHooks {
  /** Keeps the server-wide node-key index current. */
  onNodeKey(node: Node, previousKey: NodePublicKey | null): void;
  onNodeGone(node: Node): void;
  /** Marks a node's live fields for the next batched write. */
  markDirty(node: Node): void;
}

export interface TailnetInternals {
  readonly store: Store;
  readonly hooks: TailnetStateHooks;
  readonly nodes: Map<NodeId, Node>;
  readonly users: Map<UserId, User>;
  readonly presence: Map<NodeId, Presence>;
  tailnetId(): TailnetId;
  tailnet(): Tailnet;
  setTailnet(row: Tailnet): void;
  policyText(): string | null;
  setPolicyText(text: string | null): void;
  /** Runs `fn` under the tailnet's write mutex. */
  write<T>(fn: () => Promise<T>): Promise<T>;
  publish(event: StateEvent, origin?: EventOrigin): void;
  audit(tx: StoreTx, actor: Actor, action: string, target: string, details: Record<string, unknown>): Promise<void>;
  requireUser(id: UserId): User;
  /** The node's presence; offline when none was recorded. */
  presenceOf(id: NodeId): Presence;
  putUser(user: User): void;
  putNode(node: Node): void;
  dropNode(node: Node): void;
  /** A user's row changed (its name index follows a rename). */
  replaceUser(before: User, after: User): void;
  dropUser(user: User): void;
  /** A node's row changed: indexes and hooks follow, listeners hear the changed facets. */
  replaceNode(before: Node, after: Node, origin: EventOrigin): void;
}
