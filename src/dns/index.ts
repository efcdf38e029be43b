/**
 * @module dns
 * Owns the per-node DNSConfig: MagicDNS names, global and split nameservers, search domains,
 * extra records (inline and from a watched file), server-wide or a tailnet's own.
 * May import: model, tailcfg, util. Must never: know about sessions or the store.
 */
export * from './dns-config.js';
export * from './tailnet-dns.js';
