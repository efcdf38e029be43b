// One tailnet's pipeline, wired one way: state events -> policy index -> change router ->
// session hub. It also keeps the tailnet's clocks: key-expiry notices, the offline grace period
// after a map session ends, ephemeral-node clean-up, and route auto-approval.
import type { Logger } from '../log/index.js';
import { ChangeRouter, TailnetMapper, type DerpSource, type DnsSource } from '../mapper/index.js';
import type { Node, NodeId, TailnetDns, UserId } from '../model/index.js';
import { isTagged } from '../model/index.js';
import type { StateEvent, TailnetState } from '../state/index.js';
import type { TailnetServices, TagDecision } from '../control/index.js';
import { SessionHub } from '../control/index.js';
import { TailnetDnsSource, type ServerDnsBase } from '../dns/index.js';
import { TailnetPolicy } from './tailnet-policy.js';

export interface PipelineOptions {
  coalesceMs: number;
  keepAliveMs: number;
  /** 0 = keys never expire by default. */
  nodeExpiryMs: number;
  ephemeralInactivityMs: number;
  /** How long a node stays online after its last map session ends (clients reconnect quickly). */
  offlineGraceMs: number;
  /**
   * The same for a router another online router can replace (HA failover); default
   * offlineGraceMs. Short, so peers get the new primary quickly.
   */
  routerFailoverGraceMs?: number;
  /** How long online/offline-only changes may wait to be sent (default 1 s). */
  presenceWindowMs?: number;
  now?: () => number;
  /**
   * How often the wall clock is compared with the monotonic one (default 10 s); a jump re-arms
   * the key-expiry timers so they follow the wall clock (docs/hardening.md).
   */
  clockCheckMs?: number;
  /** High availability's hooks (docs/ha.md); absent with a single instance. */
  hooks?: PipelineHooks;
}

export interface PipelineHooks {
  /** A map session of the node started on this instance. */
  sessionOnline(nodeId: NodeId, capVersion: number): void;
  /** The node's last session on this instance ended and its grace period passed. */
  sessionOffline(nodeId: NodeId): void;
  /** False while another instance runs the singleton job. */
  runsJob(job: 'ephemeral-cleanup'): boolean;
}

/** setTimeout's ceiling; later expiries are re-armed by a daily sweep. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A wall clock that drifts from the monotonic one by more than this has been set. */
const CLOCK_JUMP_MS = 1_000;
const POLICY_ACTOR = { name: 'policy' };
const SYSTEM_ACTOR = { name: 'system' };

export class TailnetPipeline implements TailnetServices {
  readonly state: TailnetState;
  readonly policy: TailnetPolicy;
  /** This tailnet's DNS: its own settings, else the server's. */
  readonly dns: TailnetDnsSource;
  readonly mapper: TailnetMapper;
  readonly hub: SessionHub;
  readonly router: ChangeRouter;
  readonly #logger: Logger;
  readonly #options: PipelineOptions;
  readonly #now: () => number;
  readonly #offlineTimers = new Map<NodeId, NodeJS.Timeout>();
  /**
   * Routers in the ordinary offline grace because no standby was online when their session
   * ended, with when it ended (monotonic): once a standby is online they fail over on the
   * router grace instead, counted from the end, rather than leaving their prefixes unreachable.
   */
  readonly #routersAwaitingStandby = new Map<NodeId, number>();
  readonly #ephemeralTimers = new Map<NodeId, NodeJS.Timeout>();
  readonly #expiryTimers = new Map<NodeId, NodeJS.Timeout>();
  readonly #unsubscribe: () => void;
  #sweepTimer: NodeJS.Timeout;
  readonly #clockTimer: NodeJS.Timeout;
  /** The wall clock minus the monotonic clock when last checked. */
  #clockSkew: number;
  #closed = false;
  /** Times the wall clock was seen to jump (tests and logs). */
  clockJumps = 0;

  /**
   * `dnsBase`: the server-wide part of DNS a tailnet's own DNS settings build on; without it
   * (benchmarks) every tailnet gets `dns` as it is.
   */
  constructor(state: TailnetState, deps: { dns: DnsSource; dnsBase?: ServerDnsBase; derp: DerpSource; logger: Logger }, options: PipelineOptions) {
    this.state = state;
    this.#logger = deps.logger.child({ tailnet: state.name });
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.policy = new TailnetPolicy(state, this.#logger);
    this.dns = new TailnetDnsSource(deps.dns, deps.dnsBase ?? null, () => state.settings.dns);
    this.mapper = new TailnetMapper({ state, policy: this.policy, dns: this.dns, derp: deps.derp, now: this.#now });
    this.hub = new SessionHub(this.mapper, {
      coalesceMs: options.coalesceMs,
      keepAliveMs: options.keepAliveMs,
      now: this.#now,
      ...(options.presenceWindowMs !== undefined ? { presenceWindowMs: options.presenceWindowMs } : {}),
    });
    this.router = new ChangeRouter({ state, policy: this.policy, mapper: this.mapper, sink: this.hub });
    this.#unsubscribe = state.subscribe((event) => this.#onEvent(event));
    for (const node of state.nodes()) {
      this.#armExpiry(node);
      // After a restart nobody is connected yet: ephemeral nodes get a fresh grace period.
      if (node.ephemeral) this.#armEphemeral(node.id);
    }
    this.#sweepTimer = setInterval(() => this.#rearmLongExpiries(), 24 * 3_600_000);
    this.#sweepTimer.unref();
    this.#clockSkew = this.#now() - performance.now();
    this.#clockTimer = setInterval(() => this.#checkClock(), options.clockCheckMs ?? 10_000);
    this.#clockTimer.unref();
  }

  // --- TailnetServices (for the control handlers) --------------------------------------------

  tagsAllowed(owner: { userId: UserId } | { tags: readonly string[] }, requested: readonly string[]): TagDecision {
    return this.policy.tagsAllowed(owner, requested);
  }

  autoApprovedRoutes(node: { userId: UserId | null; tags: readonly string[]; ipv4: string | null; ipv6: string | null }, advertised: readonly string[]): string[] {
    return this.policy.autoApprovedRoutes(node, advertised);
  }

  sshCheckPeriodMs(src: NodeId, dst: NodeId, localUser: string): number | null | undefined {
    return this.policy.sshCheckPeriodMs(src, dst, localUser);
  }

  defaultKeyExpiry(tagged: boolean, now: Date): Date | null {
    const lifetime = this.state.nodeExpiryMs(this.#options.nodeExpiryMs);
    if (tagged || lifetime <= 0) return null;
    return new Date(now.getTime() + lifetime);
  }

  sessionStarted(node: Node, capVersion: number): void {
    const timer = this.#offlineTimers.get(node.id);
    if (timer !== undefined) clearTimeout(timer);
    this.#offlineTimers.delete(node.id);
    this.#routersAwaitingStandby.delete(node.id);
    this.#disarmEphemeral(node.id);
    this.state.setPresence(node.id, { online: true, capVersion });
    this.#options.hooks?.sessionOnline(node.id, capVersion);
  }

  /** True while a session of the node is open here or in its offline grace period here. */
  holdsSession(id: NodeId): boolean {
    return this.hub.hasSession(id) || this.#offlineTimers.has(id);
  }

  sessionEnded(node: Node): void {
    if (this.#closed || this.hub.hasSession(node.id)) return;
    // Hysteresis is in two places: a router back within the grace never lost anything, and the
    // primary table never hands a prefix back to a router that returns later (primary-routes.ts).
    const routerGraceMs = this.#routerGraceMs;
    const served = this.#servedRoutes(node.id);
    const standby = this.#hasStandby(node.id, served);
    this.#routersAwaitingStandby.delete(node.id);
    if (!standby && routerGraceMs < this.#options.offlineGraceMs && served.size > 0) {
      this.#routersAwaitingStandby.set(node.id, performance.now());
    }
    this.#armOffline(node.id, standby ? routerGraceMs : this.#options.offlineGraceMs);
  }

  #armOffline(id: NodeId, delayMs: number): void {
    const existing = this.#offlineTimers.get(id);
    if (existing !== undefined) clearTimeout(existing);
    const timer = setTimeout(() => {
      this.#offlineTimers.delete(id);
      this.#routersAwaitingStandby.delete(id);
      if (this.hub.hasSession(id) || this.state.node(id) === undefined) return;
      this.state.setPresence(id, { online: false, capVersion: this.state.presence(id).capVersion });
      this.#options.hooks?.sessionOffline(id);
      const current = this.state.node(id);
      if (current?.ephemeral) this.#armEphemeral(id);
    }, Math.max(0, delayMs));
    timer.unref();
    this.#offlineTimers.set(id, timer);
  }

  /**
   * `candidate` came online or began serving routes: it may be the standby a waiting router
   * lacked. Only that node can have changed the answer, so only it is checked (not the tailnet).
   */
  #standbyMayHaveAppeared(candidate: NodeId): void {
    if (this.#routersAwaitingStandby.size === 0 || !this.state.presence(candidate).online) return;
    const offered = this.#servedRoutes(candidate);
    if (offered.size === 0) return;
    // Deleting the entry being visited is safe while iterating a Map.
    for (const [id, endedAt] of this.#routersAwaitingStandby) {
      const router = this.state.node(id);
      if (id === candidate || router === undefined || !servesAnyOf(router, offered)) continue;
      this.#routersAwaitingStandby.delete(id);
      this.#armOffline(id, endedAt + this.#routerGraceMs - performance.now());
    }
  }

  /** The subnet routes a node advertises and has approved (exit routes are not failed over). */
  #servedRoutes(id: NodeId): Set<string> {
    const node = this.state.node(id);
    if (node === undefined) return new Set();
    return new Set(node.approvedRoutes.filter((r) => r !== '0.0.0.0/0' && r !== '::/0' && node.advertisedRoutes.includes(r)));
  }

  /** Whether another online node serves one of `served`, this node's routes (so it can take over). */
  #hasStandby(id: NodeId, served: ReadonlySet<string>): boolean {
    if (served.size === 0) return false;
    for (const other of this.state.nodes()) {
      if (other.id !== id && this.state.presence(other.id).online && servesAnyOf(other, served)) return true;
    }
    return false;
  }

  get #routerGraceMs(): number {
    return this.#options.routerFailoverGraceMs ?? this.#options.offlineGraceMs;
  }

  /** Ends every session (server shutdown) and stops the clocks. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.hub.closeAll();
    clearInterval(this.#sweepTimer);
    clearInterval(this.#clockTimer);
    for (const timers of [this.#offlineTimers, this.#ephemeralTimers, this.#expiryTimers]) {
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
    }
    this.#routersAwaitingStandby.clear();
  }

  // --- events --------------------------------------------------------------------------------

  #onEvent(event: StateEvent): void {
    let change;
    try {
      change = this.policy.apply(event);
    } catch (err) {
      // A broken invariant in the policy index must not take the tailnet down: rebuild from
      // the state and resynchronise every session.
      this.#logger.error({ err, event: event.kind }, 'policy index update failed; rebuilding');
      this.policy.rebuild();
      for (const node of this.hub.connectedNodes()) this.hub.markSelf(node, 'resync');
      return;
    }
    this.router.route(event, change);
    switch (event.kind) {
      case 'nodeAdded':
        this.#armExpiry(event.node);
        this.#autoApprove(event.node);
        break;
      case 'nodeChanged':
        if (event.facets.has('keyExpiry')) this.#armExpiry(event.after);
        if (event.facets.has('advertisedRoutes') || event.facets.has('tags') || event.facets.has('user')) this.#autoApprove(event.after);
        if (event.facets.has('advertisedRoutes') || event.facets.has('approvedRoutes')) this.#standbyMayHaveAppeared(event.after.id);
        break;
      case 'nodeRemoved':
        this.#forget(event.node.id);
        break;
      case 'policyChanged':
        for (const node of this.state.nodes()) if (node.advertisedRoutes.length > 0) this.#autoApprove(node);
        break;
      case 'settingsChanged':
        if (JSON.stringify(event.before.dns) !== JSON.stringify(event.after.dns)) this.#dnsChanged(event.before.dns);
        break;
      case 'presenceChanged':
        if (event.after.online) this.#standbyMayHaveAppeared(event.nodeId);
        // With several instances a node's session may end on another one: its clean-up clock
        // starts here too (the singleton job decides who deletes).
        if (this.#options.hooks !== undefined && this.state.node(event.nodeId)?.ephemeral === true) {
          if (event.after.online) this.#disarmEphemeral(event.nodeId);
          else if (!this.holdsSession(event.nodeId)) this.#armEphemeral(event.nodeId);
        }
        break;
      default:
        break;
    }
  }

  /**
   * The tailnet's own DNS changed: every connected node gets the new DNS config. When MagicDNS
   * was turned on or off, every peer's name changes too, so every node gets a full netmap.
   */
  #dnsChanged(before: TailnetDns | null): void {
    const domainBefore = this.dns.baseDomainWith(before);
    this.dns.changed();
    if (this.dns.baseDomain === domainBefore) {
      this.router.broadcast('dns', this.hub.connectedNodes());
      return;
    }
    this.mapper.invalidateAll();
    for (const node of this.hub.connectedNodes()) this.hub.markSelf(node, 'resync');
  }

  /** Approves what the policy's autoApprovers allow; approval only ever adds routes. */
  #autoApprove(node: Node): void {
    if (node.advertisedRoutes.length === 0) return;
    const approved = this.policy.autoApprovedRoutes({ userId: isTagged(node) ? null : node.userId, tags: node.tags, ipv4: node.ipv4, ipv6: node.ipv6 }, node.advertisedRoutes);
    const missing = approved.filter((r) => !node.approvedRoutes.includes(r));
    if (missing.length === 0) return;
    this.state.updateNode(node.id, { approvedRoutes: [...node.approvedRoutes, ...missing] }, POLICY_ACTOR, { action: 'node.routes.autoapprove' })
      .catch((err: unknown) => this.#logger.error({ err, node_id: node.id }, 'auto-approving routes failed'));
  }

  #armExpiry(node: Node): void {
    const existing = this.#expiryTimers.get(node.id);
    if (existing !== undefined) clearTimeout(existing);
    this.#expiryTimers.delete(node.id);
    if (node.keyExpiry === null) return;
    const delay = node.keyExpiry.getTime() - this.#now();
    if (delay <= 0 || delay > MAX_TIMER_MS) return;
    const timer = setTimeout(() => {
      this.#expiryTimers.delete(node.id);
      if (this.state.node(node.id) !== undefined) this.router.expired(node.id);
    }, delay);
    timer.unref();
    this.#expiryTimers.set(node.id, timer);
  }

  /**
   * Expiry timers count monotonic time from when they were armed, but key expiry is a wall-clock
   * date. When the wall clock is set (NTP step, VM resume, an operator), re-arm them: after a
   * forward jump a key now past its expiry is announced at once (and once: its timer is gone),
   * after a backward jump no key expires before the wall clock reaches its date.
   */
  #checkClock(): void {
    const skew = this.#now() - performance.now();
    const jumpMs = skew - this.#clockSkew;
    this.#clockSkew = skew;
    if (Math.abs(jumpMs) < CLOCK_JUMP_MS) return;
    this.clockJumps++;
    this.#logger.warn({ jump_ms: Math.round(jumpMs) }, 'the wall clock jumped; re-arming key-expiry timers');
    const pending = new Set(this.#expiryTimers.keys());
    for (const node of this.state.nodes()) {
      if (node.keyExpiry === null) continue;
      const due = node.keyExpiry.getTime() <= this.#now();
      if (due && pending.has(node.id)) {
        clearTimeout(this.#expiryTimers.get(node.id));
        this.#expiryTimers.delete(node.id);
        this.router.expired(node.id);
      } else if (!due) {
        // Also a key whose timer fired early, before a backward jump: its peers hear again
        // when the wall clock reaches the date.
        this.#armExpiry(node);
      }
    }
  }

  #rearmLongExpiries(): void {
    for (const node of this.state.nodes()) if (node.keyExpiry !== null && !this.#expiryTimers.has(node.id)) this.#armExpiry(node);
  }

  #armEphemeral(id: NodeId): void {
    this.#disarmEphemeral(id);
    const timer = setTimeout(() => {
      this.#ephemeralTimers.delete(id);
      const node = this.state.node(id);
      if (node === undefined || !node.ephemeral || this.hub.hasSession(id) || this.state.presence(id).online) return;
      if (this.#options.hooks?.runsJob('ephemeral-cleanup') === false) {
        this.#armEphemeral(id);
        return;
      }
      this.state.deleteNode(id, SYSTEM_ACTOR, 'node.ephemeral.expire')
        .catch((err: unknown) => this.#logger.error({ err, node_id: id }, 'deleting an inactive ephemeral node failed'));
    }, this.#options.ephemeralInactivityMs);
    timer.unref();
    this.#ephemeralTimers.set(id, timer);
  }

  #disarmEphemeral(id: NodeId): void {
    const timer = this.#ephemeralTimers.get(id);
    if (timer !== undefined) clearTimeout(timer);
    this.#ephemeralTimers.delete(id);
  }

  #forget(id: NodeId): void {
    this.#routersAwaitingStandby.delete(id);
    for (const timers of [this.#offlineTimers, this.#ephemeralTimers, this.#expiryTimers]) {
      const timer = timers.get(id);
      if (timer !== undefined) clearTimeout(timer);
      timers.delete(id);
    }
  }
}

/** Whether `node` advertises and has approved one of `routes`. */
function servesAnyOf(node: Node, routes: ReadonlySet<string>): boolean {
  return node.approvedRoutes.some((route) => routes.has(route) && node.advertisedRoutes.includes(route));
}
