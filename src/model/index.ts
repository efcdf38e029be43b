/**
 * @module model
 * Owns Headway's domain types: Tailnet, User, Node, PreAuthKey, ApiKey, PolicyVersion,
 * AuditEntry, with branded ids. Readonly data, no behaviour beyond tiny predicates.
 * May import: key, tailcfg (types only). Must never: know about rows, SQL or the wire.
 */
export * from './types.js';
