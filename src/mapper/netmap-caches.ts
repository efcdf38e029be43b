// The bounded caches that let full netmaps share compressed pieces across viewers: each peer
// block's renderings (by members and view keys) and the UserProfiles lists (by user ids). They
// hold finished frames only; the mapper builds what they miss.
import type { NodeId } from '../model/index.js';
import { sameNumbers } from '../util/index.js';
import type { WireVariant } from './tail-node.js';

/** Peers per block of the netmap's Peers list (node ids id/PEER_BLOCK share a block). */
export const PEER_BLOCK = 32;
/** Renderings held across all blocks, bounded like the mapper's other cached fragments. */
const MAX_RENDERINGS = 65_536;
/** Distinct renderings kept per peer block (viewers that see different members or views). */
const MAX_BLOCK_RENDERINGS = 64;
/** Distinct UserProfiles lists kept compressed (viewers that see different sets of users). */
const MAX_PROFILE_LISTS = 1_024;

/**
 * One compressed rendering of a peer block: the members a viewer sees, in order, with the view
 * key each is shown with. A viewer whose members and keys are equal element by element gets
 * the same bytes; comparing arrays spares building a key string per peer per netmap.
 */
export interface BlockRendering {
  readonly variant: WireVariant;
  readonly ids: readonly NodeId[];
  readonly viewKeys: readonly string[];
  /** The distinct wire user ids of the members, for the netmap's UserProfiles. */
  readonly users: readonly number[];
  /** Null when none of the members is in the state. */
  readonly frame: Buffer | null;
}

/** Per block of node ids, its renderings; a change to any member drops the block's. */
export class BlockRenderings {
  readonly #blocks = new Map<number, BlockRendering[]>();
  #count = 0;

  find(block: number, variant: WireVariant, members: readonly NodeId[], viewKeys: readonly string[]): BlockRendering | undefined {
    const renderings = this.#blocks.get(block);
    if (renderings === undefined) return undefined;
    for (const rendering of renderings) {
      if (rendering.variant === variant && sameMembers(rendering, members, viewKeys)) return rendering;
    }
    return undefined;
  }

  add(block: number, rendering: BlockRendering): void {
    let renderings = this.#blocks.get(block);
    if (renderings === undefined) this.#blocks.set(block, (renderings = []));
    if (renderings.length >= MAX_BLOCK_RENDERINGS) renderings.shift();
    else if (++this.#count > MAX_RENDERINGS) {
      this.clear();
      this.#blocks.set(block, (renderings = []));
      this.#count = 1;
    }
    renderings.push(rendering);
  }

  /** Drops the renderings of the block holding `node`. */
  dropBlockOf(node: NodeId): void {
    const block = Math.floor(node / PEER_BLOCK);
    this.#count -= this.#blocks.get(block)?.length ?? 0;
    this.#blocks.delete(block);
  }

  clear(): void {
    this.#blocks.clear();
    this.#count = 0;
  }
}

function sameMembers(rendering: BlockRendering, members: readonly NodeId[], viewKeys: readonly string[]): boolean {
  const ids = rendering.ids;
  if (ids.length !== members.length) return false;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] !== members[i] || rendering.viewKeys[i] !== viewKeys[i]) return false;
  }
  return true;
}

/** Compressed UserProfiles lists by a hash of their sorted ids; dropped when any user changes. */
export class ProfileLists {
  readonly #lists = new Map<number, Array<{ readonly ids: readonly number[]; readonly frame: Buffer }>>();
  #count = 0;

  /** The frame for `ids` (ascending), built by `build` when missing; `hit` says which. */
  get(ids: readonly number[], build: () => Buffer): { frame: Buffer; hit: boolean } {
    let hash = ids.length;
    for (const id of ids) hash = (Math.imul(hash, 31) + id) | 0;
    if (this.#count >= MAX_PROFILE_LISTS) this.clear();
    let lists = this.#lists.get(hash);
    if (lists === undefined) this.#lists.set(hash, (lists = []));
    for (const list of lists) {
      if (sameNumbers(list.ids, ids)) return { frame: list.frame, hit: true };
    }
    const frame = build();
    lists.push({ ids, frame });
    this.#count++;
    return { frame, hit: false };
  }

  clear(): void {
    this.#lists.clear();
    this.#count = 0;
  }
}
