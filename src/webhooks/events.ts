// Tailscale's webhook events (docs: tailscale.com/kb/1213/webhooks), made from the state's
// change events. Each POST body is a JSON array of events; each event is
// `{timestamp, version: 1, type, tailnet, message, data}` with string-valued data.
import type { Node, User } from '../model/index.js';
import type { StateEvent } from '../state/index.js';

/** Every event type a subscription may name (tailscale-client-go-v2's WebhookSubscriptionType). */
export const WEBHOOK_EVENT_TYPES = [
  'nodeCreated', 'nodeNeedsApproval', 'nodeApproved', 'nodeKeyExpiringInOneDay', 'nodeKeyExpired', 'nodeDeleted',
  'policyUpdate', 'userCreated', 'userNeedsApproval', 'userSuspended', 'userRestored', 'userDeleted', 'userApproved',
  'userRoleUpdated', 'subnetIPForwardingNotEnabled', 'exitNodeIPForwardingNotEnabled',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Categories expand to their events, as in Tailscale's console. */
export const WEBHOOK_CATEGORIES: Readonly<Record<string, readonly WebhookEventType[]>> = {
  categoryTailnetManagement: ['nodeCreated', 'nodeNeedsApproval', 'nodeApproved', 'nodeKeyExpiringInOneDay', 'nodeKeyExpired', 'nodeDeleted', 'policyUpdate', 'userCreated', 'userNeedsApproval', 'userSuspended', 'userRestored', 'userDeleted', 'userApproved', 'userRoleUpdated'],
  categoryDeviceMisconfigurations: ['subnetIPForwardingNotEnabled', 'exitNodeIPForwardingNotEnabled'],
};

export interface WebhookEvent {
  timestamp: string;
  version: 1;
  type: string;
  tailnet: string;
  message: string;
  data: Record<string, string>;
}

export function subscribes(subscriptions: readonly string[], type: string): boolean {
  return subscriptions.some((s) => s === type || (WEBHOOK_CATEGORIES[s]?.includes(type as WebhookEventType) ?? false));
}

function nodeData(node: Node, serverUrl: string): Record<string, string> {
  return { nodeID: node.stableId, deviceName: node.givenName, managedBy: node.tags.length > 0 ? node.tags.join(',') : '', url: `${serverUrl}/admin/machines/${node.ipv4 ?? node.stableId}` };
}

function userData(user: User): Record<string, string> {
  return { user: user.email !== '' ? user.email : user.name, userID: String(user.id) };
}

/** The Tailscale events one state change makes (none for most live changes). */
export function eventsFor(change: StateEvent, tailnet: string, nowMs: number, serverUrl: string): WebhookEvent[] {
  const event = (type: WebhookEventType, message: string, data: Record<string, string>): WebhookEvent =>
    ({ timestamp: new Date(nowMs).toISOString(), version: 1, type, tailnet, message, data });
  switch (change.kind) {
    case 'nodeAdded': {
      const created = event('nodeCreated', `Node ${change.node.givenName} created`, nodeData(change.node, serverUrl));
      if (change.node.approved) return [created];
      return [created, event('nodeNeedsApproval', `Node ${change.node.givenName} needs approval`, nodeData(change.node, serverUrl))];
    }
    case 'nodeChanged':
      if (change.before.approved || !change.after.approved) return [];
      return [event('nodeApproved', `Node ${change.after.givenName} approved`, nodeData(change.after, serverUrl))];
    case 'nodeRemoved':
      return [event('nodeDeleted', `Node ${change.node.givenName} deleted`, nodeData(change.node, serverUrl))];
    case 'policyChanged':
      return [event('policyUpdate', 'Tailnet policy file updated', { url: `${serverUrl}/admin/acls` })];
    case 'userAdded':
      return [event('userCreated', `User ${change.user.name} created`, userData(change.user))];
    case 'userRemoved':
      return [event('userDeleted', `User ${change.user.name} deleted`, userData(change.user))];
    case 'userChanged':
      if (change.before.role === change.after.role) return [];
      return [event('userRoleUpdated', `User ${change.after.name} role changed from ${change.before.role} to ${change.after.role}`, { ...userData(change.after), oldRoles: change.before.role, newRoles: change.after.role })];
    default:
      return [];
  }
}

export function keyExpiryEvent(type: 'nodeKeyExpiringInOneDay' | 'nodeKeyExpired', node: Node, tailnet: string, nowMs: number, serverUrl: string): WebhookEvent {
  const when = node.keyExpiry!.toISOString();
  return {
    timestamp: new Date(nowMs).toISOString(),
    version: 1,
    type,
    tailnet,
    message: type === 'nodeKeyExpired' ? `Node ${node.givenName} key expired at ${when}` : `Node ${node.givenName} key expires at ${when}`,
    data: { ...nodeData(node, serverUrl), expiration: when },
  };
}

export function testEvent(tailnet: string, nowMs: number): WebhookEvent {
  return { timestamp: new Date(nowMs).toISOString(), version: 1, type: 'test', tailnet, message: 'This is a test event', data: {} };
}
