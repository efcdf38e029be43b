// One prom-client registry per server instance (not the global one), so several servers in one
// test process do not collide. Names: headway_<part>_<thing>[_unit], `_total` on counters.
import { Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

export function createMetricsRegistry(options: { defaultMetrics: boolean }): Registry {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'headway_process_' });
  return registry;
}
