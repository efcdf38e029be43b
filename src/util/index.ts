/**
 * @module util
 * Small leaf concepts, one per file: IP addresses and prefixes (`ip.ts`), IP sets (`ip-set.ts`),
 * durations (`duration.ts`), the error base class (`headway-error.ts`), seeded random numbers
 * (`random.ts`), binary search over sorted ids (`sorted.ts`), a mutex (`mutex.ts`), keyed rate
 * limits (`rate-limiter.ts`). No grab-bag helpers.
 * May import: nothing of ours. Must never: do I/O or hold state beyond one object's own.
 */
export * from './ip.js';
export * from './headway-error.js';
export * from './duration.js';
export * from './mutex.js';
export * from './ip-set.js';
export * from './random.js';
export * from './sorted.js';
export * from './rate-limiter.js';
