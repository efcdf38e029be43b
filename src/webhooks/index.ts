/**
 * @module webhooks
 * Owns webhook delivery: Tailscale's event payloads made from state changes and key-expiry scans,
 * the `Tailscale-Webhook-Signature` HMAC, the persisted delivery queue with retries and backoff.
 * Endpoints are managed through the API v2 (api/v2/webhooks.ts) and the CLI; the server starts
 * the dispatcher. May import: state, store (through the state's store), model, log, util.
 * Must never: block a state change on delivery (events are queued, then sent).
 */
export { WebhookDispatcher, type WebhookDispatcherOptions } from './dispatcher.js';
export { WEBHOOK_CATEGORIES, WEBHOOK_EVENT_TYPES, eventsFor, subscribes, testEvent, type WebhookEvent, type WebhookEventType } from './events.js';
export { SIGNATURE_HEADER, signPayload, verifySignature } from './signature.js';
export { WebhookErrors } from './errors.js';
