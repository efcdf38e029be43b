// POST /machine/register: logout, interactive follow-ups, pre-auth key logins, restarts of a
// known node, key rotation and new interactive logins, decided in the order of protocol.md
// §8.3. Every answer about an existing node first checks that the Noise machine key owns it.
import type { MachinePublicKey, NodePublicKey } from '../key/index.js';
import type { Node, PreAuthKey, TailnetId, UserId } from '../model/index.js';
import { isTagged } from '../model/index.js';
import type { Actor, TailnetState } from '../state/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { HeadwayError } from '../util/headway-error.js';
import type { ControlBackend } from './control-backend.js';
import { MachineErrors } from './machine-errors.js';
import { parseRegisterRequest, type RegisterInput } from './machine-request.js';
import type { NoiseRequest, NoiseResponse, NoiseRequestContext } from './noise-request.js';
import { readRequestBody } from './noise-request.js';

/** The message a client shows for a key we refuse; it never says which keys exist. */
export const INVALID_AUTH_KEY_MESSAGE = 'invalid pre auth key';

const TAGGED_DEVICES_USER = { ID: 2147455555, LoginName: 'tagged-devices', DisplayName: 'Tagged Devices' };

export async function handleRegister(backend: ControlBackend, req: NoiseRequest, res: NoiseResponse, ctx: NoiseRequestContext): Promise<void> {
  const limits = backend.registrationLimits;
  if (limits !== undefined && !limits.perAddress.tryTake(ctx.remoteAddress ?? '')) {
    throw new HeadwayError(MachineErrors.RATE_LIMITED, `/machine/register: too many registrations from ${ctx.remoteAddress ?? 'this address'} (limit ${limits.perAddress.perMinute} per minute); retry later`);
  }
  const input = parseRegisterRequest(await readRequestBody(req, ctx.maxRequestBodyBytes));
  // Counted by the key's text, so unknown keys (guesses) are limited as well as real ones; only
  // the public prefix part is kept in the table.
  if (limits !== undefined && input.authKey !== null && input.authKey !== '' && !limits.perKey.tryTake(input.authKey.slice(0, 24))) {
    throw new HeadwayError(MachineErrors.RATE_LIMITED, `/machine/register: too many registrations with this pre-auth key (limit ${limits.perKey.perMinute} per minute); retry later`);
  }
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  const response = await register(backend, input, ctx.machineKey, abort.signal, ctx.remoteAddress);
  if (response === null || res.destroyed || res.writableEnded) return;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(response));
}

/** A device acting for itself; the audit log's "from where" is its connection's address. */
function nodeActor(machineKey: MachinePublicKey, remoteAddress: string | undefined): Actor {
  return { name: `machine:${machineKey.slice(5, 17)}`, ...(remoteAddress !== undefined ? { from: remoteAddress } : {}) };
}

/** Decides a registration; null when the client went away while it waited. */
export async function register(backend: ControlBackend, input: RegisterInput, machineKey: MachinePublicKey, signal: AbortSignal, remoteAddress?: string): Promise<tailcfg.RegisterResponse | null> {
  const { state } = backend;
  const now = new Date();
  const actor = nodeActor(machineKey, remoteAddress);

  // 1. Logout (a past expiry) or "expire sooner" (a future one).
  if (input.expiry !== null) {
    const found = ownedNode(backend, input.nodeKey, machineKey);
    if (found !== undefined) {
      const { tailnet, node } = found;
      if (input.expiry.getTime() <= now.getTime()) {
        if (node.ephemeral) {
          await tailnet.deleteNode(node.id, actor, 'node.logout');
        } else {
          await tailnet.expireNode(node.id, actor, now);
        }
        return { ...success(tailnet, node), NodeKeyExpired: true, MachineAuthorized: false };
      }
      if (node.keyExpiry !== null && input.expiry.getTime() > node.keyExpiry.getTime()) {
        throw new HeadwayError(MachineErrors.EXPIRY_EXTENSION, 'extending key is not allowed');
      }
      const updated = await tailnet.updateNode(node.id, { keyExpiry: input.expiry }, actor, { action: 'node.expire' });
      return success(tailnet, updated);
    }
    if (input.expiry.getTime() <= now.getTime()) {
      // Logging out an unknown key: nothing to do, and nothing to reveal.
      return emptyResponse({ NodeKeyExpired: true });
    }
  }

  // 2. An interactive login's follow-up: wait for the admin.
  if (input.followup !== '') {
    const id = registrationIdOf(input.followup);
    const registration = id === null ? undefined : await state.pending.lookup(id);
    if (id !== null && (registration === undefined || registration.machineKey === machineKey)) {
      const outcome = await state.pending.wait(id, signal);
      if (outcome === 'aborted') return null;
      if (outcome.kind === 'approved' && outcome.node.machineKey === machineKey) {
        const tailnet = state.tailnet(outcome.node.tailnetId);
        const node = tailnet?.node(outcome.node.id);
        if (tailnet !== undefined && node !== undefined) return success(tailnet, node);
      }
    }
    return interactive(backend, input, machineKey);
  }

  // 3. A pre-auth key.
  if (input.authKey !== null) return registerWithAuthKey(backend, input, machineKey, actor);

  // 4. A known node restarting with its current key.
  const known = ownedNode(backend, input.nodeKey, machineKey);
  if (known !== undefined) {
    const { tailnet, node } = known;
    if (node.keyExpiry !== null && node.keyExpiry.getTime() <= now.getTime()) {
      return { ...success(tailnet, node), NodeKeyExpired: true, MachineAuthorized: false };
    }
    if (Object.keys(input.hostinfo).length > 0) await tailnet.applyLiveUpdate(node.id, { hostinfo: input.hostinfo });
    return success(tailnet, tailnet.node(node.id) ?? node);
  }

  // 5 and 6. Key rotation without a key, or a new machine: the admin must approve.
  return interactive(backend, input, machineKey);
}

async function interactive(backend: ControlBackend, input: RegisterInput, machineKey: MachinePublicKey): Promise<tailcfg.RegisterResponse> {
  const pending = backend.state.pending;
  const existing = pending.findByNodeKey(input.nodeKey);
  const registration = existing !== undefined && existing.machineKey === machineKey
    ? existing
    : await pending.create({
      machineKey,
      nodeKey: input.nodeKey,
      oldNodeKey: input.oldNodeKey,
      discoKey: null,
      hostinfo: input.hostinfo,
      ephemeral: input.ephemeral,
      requestedExpiry: input.expiry,
    });
  return emptyResponse({ AuthURL: authUrl(backend.serverUrl, registration.id) });
}

export function authUrl(serverUrl: string, id: string): string {
  return `${serverUrl.replace(/\/+$/, '')}/register/${id}`;
}

/** The registration id at the end of an AuthURL we issued; null for anything else. */
export function registrationIdOf(url: string): string | null {
  const match = /\/register\/([A-Za-z0-9_-]{8,64})\/?$/.exec(url);
  return match === null ? null : match[1]!;
}

async function registerWithAuthKey(backend: ControlBackend, input: RegisterInput, machineKey: MachinePublicKey, actor: Actor): Promise<tailcfg.RegisterResponse> {
  const { state } = backend;
  const key = await state.findPreAuthKey(input.authKey!);
  const now = new Date();
  if (key === undefined || !usable(key, now)) {
    // A node that already used this key and presents it again (containers run `tailscale up
    // --authkey` on every start) is let through as a restart, as headscale does.
    const known = ownedNode(backend, input.nodeKey, machineKey);
    if (key !== undefined && known !== undefined && known.node.preAuthKeyId === key.id && known.tailnet.id === key.tailnetId) {
      return success(known.tailnet, known.node);
    }
    return emptyResponse({ Error: INVALID_AUTH_KEY_MESSAGE });
  }
  const tailnet = state.tailnet(key.tailnetId as TailnetId);
  if (tailnet === undefined) return emptyResponse({ Error: INVALID_AUTH_KEY_MESSAGE });
  const services = backend.services(tailnet.id);

  // Tags: a tagged key decides them; otherwise the key's user may request tags it owns.
  const requested = [...new Set(input.hostinfo.RequestTags ?? [])];
  let tags: readonly string[] = key.tags;
  if (key.tags.length === 0 && requested.length > 0) {
    if (key.userId === null) return emptyResponse({ Error: INVALID_AUTH_KEY_MESSAGE });
    const decision = services.tagsAllowed({ userId: key.userId as UserId }, requested);
    if (!decision.allowed) return emptyResponse({ Error: `requested tags [${decision.denied.join(', ')}] are invalid or not permitted` });
    tags = requested;
  }
  const userId = (key.userId as UserId | null);
  const tagged = tags.length > 0;
  const keyExpiry = earlier(services.defaultKeyExpiry(tagged, now), input.expiry);

  // The same machine logging in again (restart with a new key, key rotation, re-auth): keep its node.
  const previous = ownedNode(backend, input.oldNodeKey, machineKey) ?? ownedNode(backend, input.nodeKey, machineKey);
  if (previous !== undefined && previous.tailnet.id === tailnet.id) {
    const node = previous.node;
    const approved = services.autoApprovedRoutes({ userId, tags, ipv4: node.ipv4, ipv6: node.ipv6 }, routableIPs(input.hostinfo));
    const updated = await tailnet.updateNode(node.id, {
      nodeKey: input.nodeKey,
      hostinfo: input.hostinfo,
      userId,
      tags,
      approvedRoutes: [...new Set([...node.approvedRoutes, ...approved])],
      keyExpiry,
      registerMethod: 'authkey',
      preAuthKeyId: key.id,
      ...(input.ephemeral || key.ephemeral ? { ephemeral: true } : {}),
    }, actor, { action: 'node.reauthenticate', consumePreAuthKey: key.id });
    return success(tailnet, updated);
  }
  const node = await registerNew(tailnet, services.autoApprovedRoutes.bind(services), {
    machineKey, nodeKey: input.nodeKey, hostinfo: input.hostinfo, userId, tags, keyExpiry,
    ephemeral: input.ephemeral || key.ephemeral, preAuthKey: key,
  }, actor).catch((err: unknown) => {
    if (err instanceof HeadwayError && err.code === 'HW_STATE_AUTHKEY_INVALID') return null;
    throw err;
  });
  if (node === null) return emptyResponse({ Error: INVALID_AUTH_KEY_MESSAGE });
  return success(tailnet, node);
}

async function registerNew(
  tailnet: TailnetState,
  autoApprove: (node: { userId: UserId | null; tags: readonly string[]; ipv4: string | null; ipv6: string | null }, advertised: readonly string[]) => string[],
  input: { machineKey: MachinePublicKey; nodeKey: NodePublicKey; hostinfo: tailcfg.Hostinfo; userId: UserId | null; tags: readonly string[]; keyExpiry: Date | null; ephemeral: boolean; preAuthKey: PreAuthKey },
  actor: Actor,
): Promise<Node> {
  // Addresses are not known before allocation; autoApprovers only match IP-based approvers on
  // the next route change, which is when such approvers can first apply.
  const approved = autoApprove({ userId: input.userId, tags: input.tags, ipv4: null, ipv6: null }, routableIPs(input.hostinfo));
  return tailnet.addNode({
    machineKey: input.machineKey,
    nodeKey: input.nodeKey,
    hostinfo: input.hostinfo,
    userId: input.userId,
    tags: input.tags,
    approvedRoutes: approved,
    keyExpiry: input.keyExpiry,
    ephemeral: input.ephemeral,
    registerMethod: 'authkey',
    consumePreAuthKey: input.preAuthKey.id,
    approved: !tailnet.needsApproval(input.userId, input.preAuthKey.preApproved),
  }, actor);
}

function usable(key: PreAuthKey, now: Date): boolean {
  if (key.revokedAt !== null) return false;
  if (key.expiresAt !== null && key.expiresAt.getTime() <= now.getTime()) return false;
  return key.reusable || key.usedCount === 0;
}

function earlier(a: Date | null, b: Date | null): Date | null {
  if (a === null) return b !== null && b.getTime() > Date.now() ? b : null;
  if (b === null || b.getTime() <= Date.now()) return a;
  return a.getTime() <= b.getTime() ? a : b;
}

function routableIPs(hostinfo: tailcfg.Hostinfo): string[] {
  return (hostinfo.RoutableIPs ?? []).filter((r): r is string => typeof r === 'string');
}

function ownedNode(backend: ControlBackend, key: NodePublicKey | null, machineKey: MachinePublicKey): { tailnet: TailnetState; node: Node } | undefined {
  if (key === null) return undefined;
  const found = backend.state.nodeByKey(key);
  return found !== undefined && found.node.machineKey === machineKey ? found : undefined;
}

function success(tailnet: TailnetState, node: Node): tailcfg.RegisterResponse {
  const user = node.userId === null ? undefined : tailnet.user(node.userId);
  if (isTagged(node) || user === undefined) {
    return {
      User: { ID: TAGGED_DEVICES_USER.ID, DisplayName: TAGGED_DEVICES_USER.DisplayName },
      Login: { ID: TAGGED_DEVICES_USER.ID, Provider: 'headway', LoginName: TAGGED_DEVICES_USER.LoginName, DisplayName: TAGGED_DEVICES_USER.DisplayName },
      NodeKeyExpired: false, MachineAuthorized: node.approved, AuthURL: '', Error: '',
    };
  }
  const display = user.displayName !== '' ? user.displayName : user.name;
  return {
    User: { ID: user.id, DisplayName: display, Created: user.createdAt.toISOString() },
    Login: { ID: user.id, Provider: 'headway', LoginName: user.email !== '' ? user.email : user.name, DisplayName: display },
    NodeKeyExpired: false, MachineAuthorized: node.approved, AuthURL: '', Error: '',
  };
}

function emptyResponse(fields: Partial<tailcfg.RegisterResponse>): tailcfg.RegisterResponse {
  return {
    User: { ID: 0, DisplayName: '' },
    Login: { ID: 0, Provider: '', LoginName: '', DisplayName: '' },
    NodeKeyExpired: false, MachineAuthorized: false, AuthURL: '', Error: '',
    ...fields,
  };
}

