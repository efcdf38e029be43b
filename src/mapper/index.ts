/**
 * @module mapper
 * Owns turning committed changes and the policy's outputs into MapResponse messages: the
 * complete netmap, per-recipient deltas, the per-peer JSON cache (serialised once per change
 * per wire variant), the zstd framing, and the change router that marks exactly the recipients
 * of an event.
 * May import: state (read views), tailcfg, model, key, util. It reads the policy through the
 * PolicyView interface. Must never: write state, touch sockets, or recompute visibility.
 */
export * from './frame.js';
export * from './policy-view.js';
export * from './pending-delta.js';
export * from './tail-node.js';
export * from './tailnet-mapper.js';
export * from './change-router.js';
