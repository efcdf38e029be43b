/**
 * @module tailcfg
 * Owns Tailscale's wire types, spelled as Tailscale spells them, and the capability-version
 * gates (`capver.ts`). No logic. Import as a namespace: `import type * as tailcfg from '../tailcfg/index.js'`.
 * May import: key. Must never: hold domain logic or our own names.
 */
export * from './types.js';
export * from './capver.js';
