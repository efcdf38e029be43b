// High-availability subnet routers: when several online nodes serve the same prefix, exactly
// one is primary and only it carries the prefix in peers' AllowedIPs and PrimaryRoutes.
//
// The rule, as the service shows it (the conformance cases record which router is primary and,
// in the grant cases, each node's creation time): the router that registered first is primary;
// it stays primary while it is online and still serves the prefix, even when an earlier router
// comes back (no flapping); when it goes offline, the earliest-registered online router that
// serves the prefix takes over; when none is online, the prefix has no primary.
//
// The table is stateful so the running server can fail over on an online change and learn
// exactly which prefixes moved; the offline compile builds it once with every router online.

export interface RouterState {
  readonly nodeId: number;
  /** Registration order; lower registered earlier. Ties break on nodeId. */
  readonly order: number;
  readonly online: boolean;
  /** Served (advertised and approved) subnet routes, canonical prefix text. Exit routes excluded. */
  readonly routes: readonly string[];
}

export interface PrimaryChange {
  readonly prefix: string;
  readonly from: number | null;
  readonly to: number | null;
}

export class PrimaryRouteTable {
  readonly #routers = new Map<number, RouterState>();
  /** prefix -> serving router ids. */
  readonly #servers = new Map<string, Set<number>>();
  readonly #primary = new Map<string, number>();

  constructor(routers: Iterable<RouterState> = []) {
    for (const router of routers) this.#put(router);
    for (const prefix of this.#servers.keys()) this.#elect(prefix);
  }

  /** Adds or replaces a router's state; returns the prefixes whose primary changed. */
  upsert(router: RouterState): PrimaryChange[] {
    const before = this.#routers.get(router.nodeId);
    const touched = new Set<string>([...(before?.routes ?? []), ...router.routes]);
    if (before !== undefined) this.#drop(before);
    this.#put(router);
    return this.#reelect(touched);
  }

  remove(nodeId: number): PrimaryChange[] {
    const before = this.#routers.get(nodeId);
    if (before === undefined) return [];
    this.#drop(before);
    return this.#reelect(new Set(before.routes));
  }

  setOnline(nodeId: number, online: boolean): PrimaryChange[] {
    const before = this.#routers.get(nodeId);
    if (before === undefined || before.online === online) return [];
    return this.upsert({ ...before, online });
  }

  /** An independent copy with the same routers and the same elected primaries. */
  clone(): PrimaryRouteTable {
    const copy = new PrimaryRouteTable();
    for (const router of this.#routers.values()) copy.#put(router);
    for (const [prefix, id] of this.#primary) copy.#primary.set(prefix, id);
    return copy;
  }

  /** The router's state as last given, or undefined for a node that serves no subnet route. */
  router(nodeId: number): RouterState | undefined {
    return this.#routers.get(nodeId);
  }

  primaryFor(prefix: string): number | null {
    return this.#primary.get(prefix) ?? null;
  }

  /** Prefixes this router is primary for, sorted. */
  primariesOf(nodeId: number): string[] {
    const out: string[] = [];
    for (const prefix of this.#routers.get(nodeId)?.routes ?? []) if (this.#primary.get(prefix) === nodeId) out.push(prefix);
    return out.sort();
  }

  /**
   * The router to use for `prefix` when only `eligible` routers may carry the traffic (grants
   * with `via`): the primary if it is eligible, else the earliest-registered online eligible one.
   */
  electAmong(prefix: string, eligible: (nodeId: number) => boolean): number | null {
    const current = this.#primary.get(prefix);
    if (current !== undefined && eligible(current)) return current;
    return this.#earliest(prefix, eligible);
  }

  #put(router: RouterState): void {
    this.#routers.set(router.nodeId, router);
    for (const prefix of router.routes) {
      let set = this.#servers.get(prefix);
      if (set === undefined) this.#servers.set(prefix, (set = new Set()));
      set.add(router.nodeId);
    }
  }

  #drop(router: RouterState): void {
    this.#routers.delete(router.nodeId);
    for (const prefix of router.routes) {
      const set = this.#servers.get(prefix);
      set?.delete(router.nodeId);
      if (set !== undefined && set.size === 0) this.#servers.delete(prefix);
    }
  }

  #reelect(prefixes: Set<string>): PrimaryChange[] {
    const changes: PrimaryChange[] = [];
    for (const prefix of prefixes) {
      const from = this.#primary.get(prefix) ?? null;
      this.#elect(prefix);
      const to = this.#primary.get(prefix) ?? null;
      if (from !== to) changes.push({ prefix, from, to });
    }
    return changes;
  }

  #elect(prefix: string): void {
    const current = this.#primary.get(prefix);
    if (current !== undefined) {
      const router = this.#routers.get(current);
      if (router !== undefined && router.online && router.routes.includes(prefix)) return;
    }
    const next = this.#earliest(prefix, () => true);
    if (next === null) this.#primary.delete(prefix);
    else this.#primary.set(prefix, next);
  }

  #earliest(prefix: string, eligible: (nodeId: number) => boolean): number | null {
    let best: RouterState | null = null;
    for (const id of this.#servers.get(prefix) ?? []) {
      const router = this.#routers.get(id)!;
      if (!router.online || !eligible(id)) continue;
      if (best === null || router.order < best.order || (router.order === best.order && router.nodeId < best.nodeId)) best = router;
    }
    return best === null ? null : best.nodeId;
  }
}
