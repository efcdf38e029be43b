/**
 * @module key
 * Owns the key types of each role (machine, node, disco, challenge, DERP server) and their text
 * forms (`mkey:`, `nodekey:`, `discokey:`, `chalpub:`, `privkey:`), plus `shortKey()` for logs.
 * May import: nothing of ours. Must never: log or serialise a private key except to its file.
 */
export * from './keys.js';
