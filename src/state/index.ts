/**
 * @module state
 * Owns the in-memory model of every tailnet (users, nodes, presence, policy text), kept equal to
 * the store: a command is one store transaction, then apply to memory, then publish one
 * StateEvent. Also the server-wide node-key index and pending interactive logins.
 * May import: store (contract), model, key, tailcfg (types), util, log.
 * Must never: import policy, mapper or control (decisions that need the policy, such as
 * tagOwners and autoApprovers, are taken by the caller and passed in).
 */
export * from './events.js';
export * from './errors.js';
export * from './given-name.js';
export * from './pending-registrations.js';
export * from './actor.js';
export { facetsBetween, mergeHostinfo, normaliseRoutes, normaliseTags, routesFromHostinfo, type LiveUpdate, type NodeUpdate } from './node-change.js';
export * from './tailnet-state.js';
export * from './server-state.js';
export type { ScimGroup } from '../store/types.js';
