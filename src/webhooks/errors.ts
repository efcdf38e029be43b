import { registerErrors } from '../util/headway-error.js';

export const WebhookErrors = registerErrors({
  invalidUrl: {
    code: 'HW_WEBHOOK_INVALID_URL',
    status: 400,
    meaning: 'A webhook endpoint URL is not an absolute http(s) URL.',
    fix: 'Give the full URL of the receiver, e.g. https://hooks.example.com/tailscale.',
  },
  unknownEvent: {
    code: 'HW_WEBHOOK_UNKNOWN_EVENT',
    status: 400,
    meaning: "A webhook subscription names an event type Tailscale's webhooks do not have.",
    fix: 'Use the event names of docs/api-v2.md (nodeCreated, nodeDeleted, policyUpdate, userCreated, ...).',
  },
});
