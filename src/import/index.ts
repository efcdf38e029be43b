/**
 * @module import
 * Owns moving in from other control servers: `headway import headscale` reads a headscale 0.23-0.29
 * database (SQLite or PostgreSQL, read-only), its Noise key and optionally its config and policy,
 * and writes users, nodes, carried pre-auth keys and the policy into a Headway tailnet in one
 * transaction, so headscale's clients reconnect to Headway without logging in again.
 * May import: store, policy (parsing only), config, model, key, tailcfg, util, log.
 * Must never: write to the source database, or run while a Headway server uses the same store
 * (the server reads the store at start-up).
 */
export { ImportErrors } from './errors.js';
export { importHeadscale, type HeadscaleImportResult, type ImportHeadscaleOptions } from './headscale/import-headscale.js';
export type { ImportReport, NotCarried } from './headscale/apply.js';
