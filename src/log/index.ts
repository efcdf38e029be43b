/**
 * @module log
 * Owns the pino logger factory (JSON by default, pretty on a TTY), the log field-name
 * constants (`fields.ts`), redaction paths, and the prom-client metrics registry.
 * May import: nothing of ours. Must never: log per event on a hot path (count with metrics).
 */
export * from './logger.js';
export * from './fields.js';
export * from './metrics.js';
