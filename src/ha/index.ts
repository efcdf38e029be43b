/**
 * @module ha
 * Owns high availability (docs/ha.md): several instances on one PostgreSQL. The change-log
 * follower that applies other instances' committed writes to this instance's state, instance
 * leases and cross-instance presence, singleton jobs under advisory locks, and the private keys
 * shared through the database (encrypted with ha.secret), the sign-ins in flight (likewise), and
 * the DERP mesh between instances. The log itself is appended by the store, in the writing
 * transaction.
 * May import: store, state, config (types), model, key, log, util, client (the DERP client of the mesh).
 * Must never: import policy, mapper or control (remote changes reach them only as state events).
 */
export * from './errors.js';
export * from './change-follower.js';
export * from './derp-mesh.js';
export * from './ha-instance.js';
export * from './presence-ledger.js';
export * from './shared-keys.js';
export * from './shared-sign-ins.js';
export * from './singleton-jobs.js';
