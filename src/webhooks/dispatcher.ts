// Delivers webhook events. A state change becomes one queued delivery per subscribed endpoint
// (a row in webhook_deliveries, written in one transaction); a poll loop POSTs due rows, signed,
// and on failure retries with exponential backoff. Because the queue is in the database, events
// queued before a restart are sent after it. Key-expiry events come from a periodic scan, queued
// once per node and expiry time (dedupe key), so a restart does not repeat them.
// With several instances (docs/ha.md) an event is queued by the instance whose write made it,
// and a due row is claimed by one instance (its next attempt pushed past the attempt, taken with
// FOR UPDATE SKIP LOCKED on PostgreSQL), so each event is delivered once; a row claimed by an
// instance that died becomes due again when the claim lapses.
import type { Logger } from 'pino';
import { F } from '../log/index.js';
import type { Webhook } from '../model/index.js';
import type { EventOrigin, ServerState, StateEvent, TailnetState } from '../state/index.js';
import { eventsFor, keyExpiryEvent, subscribes, type WebhookEvent } from './events.js';
import { SIGNATURE_HEADER, signPayload } from './signature.js';

export interface WebhookDispatcherOptions {
  logger: Logger;
  serverUrl: string;
  now?: () => number;
  /** How often due deliveries are looked for (and the endpoint list refreshed). Default 1 s. */
  pollIntervalMs?: number;
  /** First retry delay; doubles per attempt. Default 30 s. */
  retryBaseMs?: number;
  /** Longest retry delay. Default 1 h. */
  retryMaxMs?: number;
  /** Attempts before a delivery is given up. Default 30 (about a day at the maximum delay). */
  maxAttempts?: number;
  requestTimeoutMs?: number;
  /** How often node key expiry is checked. Default 60 s. */
  keyExpiryScanMs?: number;
}

const DAY_MS = 86_400_000;
/** A given-up delivery's next attempt: never (year 9999). */
const NEVER_MS = 253_402_300_799_000;
const BATCH = 32;

export class WebhookDispatcher {
  readonly #state: ServerState;
  readonly #logger: Logger;
  readonly #serverUrl: string;
  readonly #now: () => number;
  readonly #pollMs: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #maxAttempts: number;
  readonly #timeoutMs: number;
  readonly #scanMs: number;
  readonly #claimMs: number;
  readonly #unsubscribe: Array<() => void> = [];
  #webhooks: Webhook[] = [];
  #timer: NodeJS.Timeout | undefined;
  #scanTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> | null = null;
  #closed = false;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(state: ServerState, options: WebhookDispatcherOptions) {
    this.#state = state;
    this.#logger = options.logger;
    this.#serverUrl = options.serverUrl.replace(/\/+$/, '');
    this.#now = options.now ?? Date.now;
    this.#pollMs = options.pollIntervalMs ?? 1_000;
    this.#retryBaseMs = options.retryBaseMs ?? 30_000;
    this.#retryMaxMs = options.retryMaxMs ?? 3_600_000;
    this.#maxAttempts = options.maxAttempts ?? 30;
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#scanMs = options.keyExpiryScanMs ?? 60_000;
    // Longer than one attempt can take, so a claim never lapses while its POST is in flight.
    this.#claimMs = Math.max(60_000, 3 * this.#timeoutMs);
  }

  async start(): Promise<void> {
    await this.#refresh();
    for (const tailnet of this.#state.tailnets()) this.#watch(tailnet);
    this.#unsubscribe.push(this.#state.onTailnets(({ kind, tailnet }) => {
      if (kind === 'tailnetAdded') this.#watch(tailnet);
    }));
    this.#timer = setInterval(() => this.#tick(), this.#pollMs);
    this.#timer.unref();
    this.#scanTimer = setInterval(() => this.#track(this.#scanKeyExpiry()), this.#scanMs);
    this.#scanTimer.unref();
    this.#tick();
    this.#track(this.#scanKeyExpiry());
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    clearInterval(this.#scanTimer);
    for (const off of this.#unsubscribe) off();
    await this.#running;
    await Promise.allSettled([...this.#pending]);
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => this.#logger.warn({ [F.err]: err }, 'webhook work failed')).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  #watch(tailnet: TailnetState): void {
    this.#unsubscribe.push(tailnet.subscribe((change: StateEvent, origin: EventOrigin) => {
      // With high availability every instance applies every change; the instance that made it
      // queues its events, so each is queued once.
      if (this.#closed || origin === 'remote') return;
      const endpoints = this.#webhooks.filter((w) => w.tailnetId === tailnet.id);
      if (endpoints.length === 0) return;
      const events = eventsFor(change, tailnet.name, this.#now(), this.#serverUrl);
      if (events.length > 0) this.#track(this.#enqueue(endpoints, events, null));
    }));
  }

  async #enqueue(endpoints: readonly Webhook[], events: readonly WebhookEvent[], dedupe: ((w: Webhook, e: WebhookEvent) => string) | null): Promise<void> {
    await this.#state.store.transaction(async (tx) => {
      for (const event of events) {
        for (const endpoint of endpoints) {
          if (!subscribes(endpoint.subscriptions, event.type)) continue;
          await tx.webhooks.enqueue(endpoint.id, JSON.stringify([event]), dedupe === null ? null : dedupe(endpoint, event));
        }
      }
    });
  }

  async #refresh(): Promise<void> {
    this.#webhooks = await this.#state.store.read.webhooks.list();
  }

  #tick(): void {
    if (this.#closed || this.#running !== null) return;
    this.#running = this.#deliverDue().catch((err: unknown) => {
      this.#logger.warn({ [F.err]: err }, 'webhook delivery loop failed');
    }).finally(() => {
      this.#running = null;
    });
  }

  async #deliverDue(): Promise<void> {
    await this.#refresh();
    for (;;) {
      if (this.#closed) return;
      // Claimed, not just read: with several instances each due row goes to one of them.
      const due = await this.#state.store.transaction((tx) => tx.webhooks.claimDue(this.#now(), BATCH, this.#claimMs));
      if (due.length === 0) return;
      await Promise.all(due.map(async (delivery) => {
        const endpoint = this.#webhooks.find((w) => w.id === delivery.webhookId) ?? await this.#state.store.read.webhooks.getById(delivery.webhookId);
        if (endpoint === undefined) {
          // Deleted meanwhile (its rows go with it); never leave a due row behind, or this loop would spin.
          await this.#state.store.read.webhooks.markFailed(delivery.id, 'the endpoint was deleted', NEVER_MS);
          return;
        }
        const problem = await this.#post(endpoint, delivery.payload, Math.floor(delivery.createdAt.getTime() / 1000));
        if (problem === null) {
          await this.#state.store.read.webhooks.markDelivered(delivery.id, this.#now());
          return;
        }
        const attempts = delivery.attempts + 1;
        const giveUp = attempts >= this.#maxAttempts;
        const delay = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** (attempts - 1));
        await this.#state.store.read.webhooks.markFailed(delivery.id, giveUp ? `gave up after ${attempts} attempts: ${problem}` : problem, giveUp ? NEVER_MS : this.#now() + delay);
        this.#logger.warn({ webhook: endpoint.endpointId, attempts, [F.err]: problem }, giveUp ? 'webhook delivery given up' : 'webhook delivery failed; will retry');
      }));
    }
  }

  /** POSTs one payload; null on a 2xx answer, else what went wrong. */
  async #post(endpoint: Webhook, body: string, signedAt: number): Promise<string | null> {
    try {
      const res = await fetch(endpoint.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'User-Agent': 'Headway-Webhooks', [SIGNATURE_HEADER]: signPayload(endpoint.secret, body, signedAt) },
        body,
        signal: AbortSignal.timeout(this.#timeoutMs),
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`;
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
      return `${err instanceof Error ? err.message : String(err)}${cause}`;
    }
  }

  async #scanKeyExpiry(): Promise<void> {
    if (this.#closed || this.#webhooks.length === 0) return;
    const now = this.#now();
    for (const tailnet of this.#state.tailnets()) {
      const endpoints = this.#webhooks.filter((w) => w.tailnetId === tailnet.id);
      if (endpoints.length === 0) continue;
      const events: WebhookEvent[] = [];
      for (const node of tailnet.nodes()) {
        const expiry = node.keyExpiry?.getTime();
        if (expiry === undefined) continue;
        if (expiry <= now && expiry > now - 7 * DAY_MS) events.push(keyExpiryEvent('nodeKeyExpired', node, tailnet.name, now, this.#serverUrl));
        else if (expiry > now && expiry <= now + DAY_MS) events.push(keyExpiryEvent('nodeKeyExpiringInOneDay', node, tailnet.name, now, this.#serverUrl));
      }
      if (events.length > 0) {
        await this.#enqueue(endpoints, events, (w, e) => `${w.id}:${e.type}:${e.data['nodeID']}:${e.data['expiration']}`);
      }
    }
  }
}
