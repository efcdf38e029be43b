// Devices and users as Tailscale's API shows them. A device is found by its nodeId (our stable
// id, `n...`) or its numeric id in any tailnet the credential may see.
import { z } from 'zod';
import type { Node, NodeId, User, UserId } from '../../model/index.js';
import type { TailnetState } from '../../state/index.js';
import { requireTagsDefined } from '../tag-owners.js';
import { routePrefix, tagName } from '../schemas.js';
import { ApiV2Errors } from './errors.js';
import { resolveTailnet, v2Error } from './handler.js';
import { tsTime, v2Route, type CompiledV2Route, type V2Context } from './route.js';

export const deviceSchema = z.object({
  addresses: z.array(z.string()),
  id: z.string().describe('The numeric id, as text (Tailscale\'s legacy id).'),
  nodeId: z.string().describe('The stable id; preferred.'),
  user: z.string().describe('The owner\'s login name (email, else user name); empty for tagged devices.'),
  name: z.string().describe('The MagicDNS name: <given name>.<base domain>.'),
  hostname: z.string(),
  clientVersion: z.string(),
  updateAvailable: z.boolean(),
  os: z.string(),
  created: z.string(),
  lastSeen: z.string(),
  connectedToControl: z.boolean(),
  keyExpiryDisabled: z.boolean(),
  expires: z.string(),
  authorized: z.boolean(),
  isExternal: z.boolean(),
  isEphemeral: z.boolean(),
  machineKey: z.string(),
  nodeKey: z.string(),
  blocksIncomingConnections: z.boolean(),
  tags: z.array(z.string()),
  tailnetLockError: z.string(),
  tailnetLockKey: z.string(),
  advertisedRoutes: z.array(z.string()).optional().describe('With fields=all.'),
  enabledRoutes: z.array(z.string()).optional().describe('With fields=all.'),
}).meta({ id: 'V2Device' });

export type DeviceJson = z.output<typeof deviceSchema>;

export function loginName(user: User | undefined): string {
  if (user === undefined) return '';
  return user.email !== '' ? user.email : user.name;
}

export function deviceJson(ctx: V2Context, tailnet: TailnetState, node: Node, allFields: boolean): DeviceJson {
  const online = tailnet.presence(node.id).online;
  const base = ctx.config.dns.baseDomain;
  return {
    addresses: [node.ipv4, node.ipv6].filter((a): a is string => a !== null),
    id: String(node.id),
    nodeId: node.stableId,
    user: node.tags.length > 0 || node.userId === null ? '' : loginName(tailnet.user(node.userId)),
    name: base === '' ? node.givenName : `${node.givenName}.${base}`,
    hostname: node.hostname,
    clientVersion: node.hostinfo.IPNVersion ?? '',
    updateAvailable: false,
    os: node.hostinfo.OS ?? '',
    created: tsTime(node.createdAt),
    lastSeen: tsTime(online ? new Date(ctx.now()) : node.lastSeen),
    connectedToControl: online,
    keyExpiryDisabled: node.keyExpiry === null,
    expires: tsTime(node.keyExpiry),
    // A device waiting for approval (tailnet setting device_approval) is Tailscale's unauthorized device.
    authorized: node.approved,
    isExternal: false,
    isEphemeral: node.ephemeral,
    machineKey: node.machineKey,
    nodeKey: node.nodeKey,
    blocksIncomingConnections: node.hostinfo.ShieldsUp === true,
    tags: [...node.tags],
    tailnetLockError: '',
    tailnetLockKey: '',
    ...(allFields ? { advertisedRoutes: [...node.advertisedRoutes], enabledRoutes: [...node.approvedRoutes] } : {}),
  };
}

/** The device of `/device/{deviceId}`: by stable id or numeric id, within what the credential sees. */
export function findDevice(ctx: V2Context): { tailnet: TailnetState; node: Node } {
  const ref = ctx.params['deviceId'] ?? '';
  const tailnets = ctx.principal.tailnet !== null ? [ctx.principal.tailnet] : [...ctx.state.tailnets()];
  for (const tailnet of tailnets) {
    if (/^[1-9][0-9]{0,15}$/.test(ref)) {
      const node = tailnet.node(Number(ref) as NodeId);
      if (node !== undefined) return { tailnet, node };
    }
    for (const node of tailnet.nodes()) if (node.stableId === ref) return { tailnet, node };
  }
  throw v2Error(ApiV2Errors.notFound, 'device not found');
}

const allFields = (ctx: V2Context) => ctx.query.get('fields') === 'all';

export const userSchema = z.object({
  id: z.string(),
  displayName: z.string(),
  loginName: z.string(),
  profilePicUrl: z.string(),
  tailnetId: z.string(),
  created: z.string(),
  type: z.enum(['member', 'shared']),
  role: z.string(),
  status: z.enum(['active', 'idle', 'suspended', 'needs-approval', 'over-billing-limit']),
  deviceCount: z.number().int(),
  lastSeen: z.string(),
  currentlyConnected: z.boolean(),
}).meta({ id: 'V2User' });

function userJson(tailnet: TailnetState, user: User): z.output<typeof userSchema> {
  const nodes = [...tailnet.nodes()].filter((n) => n.userId === user.id && n.tags.length === 0);
  const seen = nodes.map((n) => n.lastSeen?.getTime() ?? 0).reduce((a, b) => Math.max(a, b), 0);
  const connected = nodes.some((n) => tailnet.presence(n.id).online);
  return {
    id: String(user.id),
    displayName: user.displayName !== '' ? user.displayName : user.name,
    loginName: loginName(user),
    profilePicUrl: '',
    tailnetId: tailnet.name,
    created: tsTime(user.createdAt),
    type: 'member',
    role: user.role,
    status: connected ? 'active' : nodes.length > 0 ? 'idle' : 'active',
    deviceCount: nodes.length,
    lastSeen: tsTime(seen === 0 ? null : new Date(seen)),
    currentlyConnected: connected,
  };
}

const empty = z.object({}).meta({ id: 'V2Empty' });

export const deviceRoutes: readonly CompiledV2Route[] = [
  v2Route({
    operationId: 'v2ListDevices', method: 'GET', path: '/tailnet/{tailnet}/devices', summary: 'List the devices of a tailnet (`fields=all` adds routes)', scope: 'devices:core',
    response: z.object({ devices: z.array(deviceSchema) }),
    async handle(ctx) {
      const tailnet = ctx.tailnet();
      return { devices: [...tailnet.nodes()].sort((a, b) => a.id - b.id).map((n) => deviceJson(ctx, tailnet, n, allFields(ctx))) };
    },
  }),
  v2Route({
    operationId: 'v2GetDevice', method: 'GET', path: '/device/{deviceId}', summary: 'Get a device', scope: 'devices:core', response: deviceSchema,
    async handle(ctx) {
      const { tailnet, node } = findDevice(ctx);
      return deviceJson(ctx, tailnet, node, allFields(ctx));
    },
  }),
  v2Route({
    operationId: 'v2DeleteDevice', method: 'DELETE', path: '/device/{deviceId}', summary: 'Delete a device', scope: 'devices:core',
    async handle(ctx) {
      const { tailnet, node } = findDevice(ctx);
      await tailnet.deleteNode(node.id, ctx.principal.actor);
      return undefined;
    },
  }),
  v2Route({
    operationId: 'v2AuthorizeDevice', method: 'POST', path: '/device/{deviceId}/authorized', summary: 'Authorize a device waiting for approval, or de-authorize one (it leaves its peers at once)', scope: 'devices:core',
    body: z.object({ authorized: z.boolean() }), response: empty,
    async handle(ctx) {
      const { tailnet, node } = findDevice(ctx);
      const authorized = (ctx.body as { authorized: boolean }).authorized;
      if (authorized === node.approved) return {};
      if (authorized) await tailnet.approveNode(node.id, ctx.principal.actor);
      else await tailnet.updateNode(node.id, { approved: false }, ctx.principal.actor, { action: 'node.deauthorize' });
      return {};
    },
  }),
  v2Route({
    operationId: 'v2SetDeviceName', method: 'POST', path: '/device/{deviceId}/name', summary: 'Rename a device (the MagicDNS label; a full name is cut at the first dot)', scope: 'devices:core',
    body: z.object({ name: z.string() }), response: empty,
    async handle(ctx) {
      const { tailnet, node } = findDevice(ctx);
      const name = (ctx.body as { name: string }).name.split('.')[0]!.trim();
      if (name === '') throw v2Error(ApiV2Errors.badRequest, 'name: must not be empty (Headway does not regenerate names from the hostname)');
      await tailnet.renameNode(node.id, name, ctx.principal.actor);
      return {};
    },
  }),
  v2Route({
    operationId: 'v2SetDeviceTags', method: 'POST', path: '/device/{deviceId}/tags', summary: 'Replace the tags of a device', scope: 'devices:core',
    body: z.object({ tags: z.array(tagName).max(64) }), response: empty,
    async handle(ctx) {
      const { tailnet, node } = findDevice(ctx);
      const tags = (ctx.body as { tags: string[] }).tags;
      requireTagsDefined(tailnet, tags, 'tags');
      await tailnet.updateNode(node.id, { tags }, ctx.principal.actor, { action: 'node.tag' });
      return {};
    },
  }),
  v2Route({
    operationId: 'v2SetDeviceKey', method: 'POST', path: '/device/{deviceId}/key', summary: 'Disable or enable key expiry of a device', scope: 'devices:core',
    body: z.object({ keyExpiryDisabled: z.boolean() }), response: empty,
    async handle(ctx) {
      const { tailnet, node } = findDevice(ctx);
      const disabled = (ctx.body as { keyExpiryDisabled: boolean }).keyExpiryDisabled;
      if (disabled) {
        await tailnet.updateNode(node.id, { keyExpiry: null }, ctx.principal.actor, { action: 'node.expire' });
      } else if (node.keyExpiry === null && tailnet.nodeExpiryMs(ctx.config.nodeExpiryMs) > 0) {
        await tailnet.updateNode(node.id, { keyExpiry: new Date(ctx.now() + tailnet.nodeExpiryMs(ctx.config.nodeExpiryMs)) }, ctx.principal.actor, { action: 'node.expire' });
      }
      return {};
    },
  }),
  v2Route({
    operationId: 'v2GetDeviceRoutes', method: 'GET', path: '/device/{deviceId}/routes', summary: 'Routes a device advertises and those enabled for it', scope: 'devices:routes',
    response: z.object({ advertisedRoutes: z.array(z.string()), enabledRoutes: z.array(z.string()) }),
    async handle(ctx) {
      const { node } = findDevice(ctx);
      return { advertisedRoutes: [...node.advertisedRoutes], enabledRoutes: [...node.approvedRoutes] };
    },
  }),
  v2Route({
    operationId: 'v2SetDeviceRoutes', method: 'POST', path: '/device/{deviceId}/routes', summary: 'Replace the enabled (approved) routes of a device', scope: 'devices:routes',
    body: z.object({ routes: z.array(routePrefix).max(1024) }),
    response: z.object({ advertisedRoutes: z.array(z.string()), enabledRoutes: z.array(z.string()) }),
    async handle(ctx) {
      const { tailnet, node } = findDevice(ctx);
      const after = await tailnet.updateNode(node.id, { approvedRoutes: (ctx.body as { routes: string[] }).routes }, ctx.principal.actor, { action: 'node.routes.approve' });
      return { advertisedRoutes: [...after.advertisedRoutes], enabledRoutes: [...after.approvedRoutes] };
    },
  }),
  v2Route({
    operationId: 'v2ListUsers', method: 'GET', path: '/tailnet/{tailnet}/users', summary: 'List the users of a tailnet', scope: 'users',
    response: z.object({ users: z.array(userSchema) }),
    async handle(ctx) {
      const tailnet = ctx.tailnet();
      const role = ctx.query.get('role');
      return { users: [...tailnet.users()].filter((u) => role === null || role === '' || u.role === role).sort((a, b) => a.id - b.id).map((u) => userJson(tailnet, u)) };
    },
  }),
  v2Route({
    operationId: 'v2GetUser', method: 'GET', path: '/users/{userId}', summary: 'Get a user', scope: 'users', response: userSchema,
    async handle(ctx) {
      const ref = ctx.params['userId'] ?? '';
      const tailnets = ctx.principal.tailnet !== null ? [ctx.principal.tailnet] : [...ctx.state.tailnets()];
      for (const tailnet of tailnets) {
        const user = /^[1-9][0-9]{0,15}$/.test(ref) ? tailnet.user(Number(ref) as UserId) : undefined;
        if (user !== undefined) return userJson(tailnet, user);
      }
      throw v2Error(ApiV2Errors.notFound, 'user not found');
    },
  }),
];

export { resolveTailnet };
