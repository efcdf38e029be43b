// SSH `check` mode: the answers to the hold-and-delegate URL of a check rule. The destination
// node (the SSH server, authenticated by its machine key on the Noise connection) asks whether
// the source node's user may log in. If that user re-authenticated within the rule's
// checkPeriod the answer is accept; otherwise a re-authentication through the identity provider
// starts, the first answer carries its sign-in URL (the client shows it to the SSH user) and
// delegates to a second URL, which long-polls until the provider flow settles (accept or
// reject). Without an identity provider every check is rejected with a message that says so.
import { randomBytes } from 'node:crypto';
import type { NodeId, TailnetId, UserId } from '../model/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { isTagged } from '../model/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import type { ControlBackend } from './control-backend.js';
import type { NoiseRequest, NoiseResponse, NoiseRequestContext } from './noise-request.js';

/** Tailscale's default when a check rule names no checkPeriod. */
export const DEFAULT_CHECK_PERIOD_MS = 12 * 3_600_000;
/** How long one follow-up request is held before the client is told to ask again. */
export const CHECK_POLL_WINDOW_MS = 50_000;
/** A started check is forgotten after this (the sign-in itself expires after ten minutes). */
const PENDING_TTL_MS = 11 * 60_000;

const NO_PROVIDER_MESSAGE = 'Headway: SSH check mode needs re-authentication through an identity provider, and this server has none configured (see docs/oidc.md); use "accept" rules.\n';

/** The accept answer: the same permissions an `accept` rule gives. */
const ACCEPT: tailcfg.SSHAction = { accept: true, allowAgentForwarding: true, allowLocalPortForwarding: true, allowRemotePortForwarding: true };

interface PendingCheck {
  readonly tailnetId: TailnetId;
  readonly userId: UserId;
  readonly srcId: NodeId;
  readonly dstId: NodeId;
  readonly result: Promise<unknown>;
  readonly expiresAt: number;
}

interface CheckRequest {
  readonly srcId: NodeId;
  readonly dstId: NodeId;
  readonly localUser: string;
  readonly authId: string | null;
}

/** Parses `/machine/ssh/action/<src>/to/<dst>?local_user=<u>[&auth_id=<id>]`; null when malformed. */
export function parseCheckRequest(url: string): CheckRequest | null {
  const parsed = new URL(url, 'https://unused');
  const m = /^\/machine\/ssh\/action\/(\d{1,15})\/to\/(\d{1,15})$/.exec(parsed.pathname);
  if (m === null) return null;
  const localUser = parsed.searchParams.get('local_user') ?? '';
  return { srcId: Number(m[1]) as NodeId, dstId: Number(m[2]) as NodeId, localUser, authId: parsed.searchParams.get('auth_id') };
}

export class SshCheckFlow {
  readonly #backend: ControlBackend;
  readonly #pending = new Map<string, PendingCheck>();

  constructor(backend: ControlBackend) {
    this.#backend = backend;
  }

  async handle(req: NoiseRequest, res: NoiseResponse, ctx: NoiseRequestContext): Promise<void> {
    const request = parseCheckRequest(req.url);
    if (request === null) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('want /machine/ssh/action/<source node id>/to/<destination node id>?local_user=<user>\n');
      return;
    }
    const action = await this.#decide(request, ctx, res);
    if (res.closed || res.destroyed) return;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(action));
  }

  async #decide(request: CheckRequest, ctx: NoiseRequestContext, res: NoiseResponse): Promise<tailcfg.SSHAction> {
    const reject = (why: string): tailcfg.SSHAction => ({ reject: true, message: `Headway: ${why}\n` });
    const tailnet = this.#backend.state.tailnetOfNode(request.dstId);
    const dst = tailnet?.node(request.dstId);
    // Only the destination itself may ask: the answer lets someone log in to it.
    if (tailnet === undefined || dst === undefined || dst.machineKey !== ctx.machineKey) return reject('this machine is not the destination of the SSH check.');
    const src = tailnet.node(request.srcId);
    if (src === undefined) return reject(`node ${request.srcId} is not in the tailnet.`);
    if (isTagged(src) || src.userId === null) return reject('a tagged device has no user to re-authenticate; SSH check mode needs a user-owned source.');
    const userId = src.userId;

    if (request.authId !== null) return this.#await(request, tailnet.id, userId, res, reject);

    if (this.#backend.reauthenticate === undefined) return { reject: true, message: NO_PROVIDER_MESSAGE };
    const period = this.#backend.services(tailnet.id).sshCheckPeriodMs(src.id, dst.id, request.localUser);
    if (period === undefined) return reject(`no check rule of the policy lets this device log in as ${JSON.stringify(request.localUser)}.`);
    // Passes are kept in the database: with several instances a check completed through one is
    // honoured by all (docs/ha.md), and a restart forgets none.
    const last = await this.#backend.state.store.read.sshChecks.lastPass(tailnet.id, userId);
    if (last !== undefined && Date.now() - last < (period ?? DEFAULT_CHECK_PERIOD_MS)) return ACCEPT;

    this.#prune();
    let started: { url: string; result: Promise<unknown> };
    try {
      started = await this.#backend.reauthenticate(tailnet.id, userId);
    } catch (err) {
      // With HA the sign-in is kept in the database: while it is away no check can start.
      this.#backend.logger.warn({ err, tailnet: tailnet.id, user: userId }, 'ssh check: starting the re-authentication failed');
      return reject('the re-authentication could not be started; try again shortly.');
    }
    const { url, result } = started;
    const authId = randomBytes(16).toString('base64url');
    this.#pending.set(authId, { tailnetId: tailnet.id, userId, srcId: src.id, dstId: dst.id, result, expiresAt: Date.now() + PENDING_TTL_MS });
    const user = tailnet.user(userId);
    this.#backend.logger.info({ tailnet: tailnet.id, user: userId, src: src.id, dst: dst.id }, 'ssh check: re-authentication started');
    return {
      message: `# Tailscale SSH requires an additional check.\n# To authenticate${user ? ` as ${user.name}` : ''}, visit: ${url}\n`,
      holdAndDelegate: followUpUrl(request, authId),
    };
  }

  /** The follow-up: held until the sign-in settles or the poll window ends (then: ask again). */
  async #await(request: CheckRequest, tailnetId: TailnetId, userId: UserId, res: NoiseResponse, reject: (why: string) => tailcfg.SSHAction): Promise<tailcfg.SSHAction> {
    const pending = this.#pending.get(request.authId!);
    if (pending === undefined || pending.expiresAt <= Date.now() || pending.tailnetId !== tailnetId || pending.userId !== userId || pending.srcId !== request.srcId || pending.dstId !== request.dstId) {
      return reject('this SSH check is unknown or has expired; connect again.');
    }
    let timer: NodeJS.Timeout | undefined;
    const windowEnd = new Promise<'wait'>((resolve) => {
      timer = setTimeout(() => resolve('wait'), CHECK_POLL_WINDOW_MS);
    });
    res.once('close', () => clearTimeout(timer));
    try {
      const outcome = await Promise.race([pending.result.then(() => 'ok' as const), windowEnd]);
      if (outcome === 'wait') return { holdAndDelegate: followUpUrl(request, request.authId!) };
      this.#pending.delete(request.authId!);
      // The user did sign in: accept even if the pass cannot be stored (the next login asks again).
      await this.#backend.state.store.transaction((tx) => tx.sshChecks.recordPass(tailnetId, userId, Date.now()))
        .catch((err: unknown) => this.#backend.logger.warn({ err, tailnet: tailnetId, user: userId }, 'ssh check: storing the pass failed'));
      this.#backend.logger.info({ tailnet: tailnetId, user: userId, src: request.srcId, dst: request.dstId }, 'ssh check: accepted');
      return ACCEPT;
    } catch (err) {
      this.#pending.delete(request.authId!);
      const why = err instanceof HeadwayError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err);
      this.#backend.logger.info({ tailnet: tailnetId, user: userId, src: request.srcId, dst: request.dstId, err: why }, 'ssh check: rejected');
      return reject(`the SSH check failed: ${why}`);
    } finally {
      clearTimeout(timer);
    }
  }

  #prune(): void {
    const now = Date.now();
    for (const [id, p] of this.#pending) if (p.expiresAt <= now) this.#pending.delete(id);
  }
}

/** The host part is irrelevant: the client fetches the path over its Noise connection. */
function followUpUrl(request: CheckRequest, authId: string): string {
  const q = new URLSearchParams({ local_user: request.localUser, auth_id: authId });
  return `https://unused/machine/ssh/action/${request.srcId}/to/${request.dstId}?${q.toString()}`;
}
