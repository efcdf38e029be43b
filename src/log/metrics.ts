// One prom-client registry per server instance (not the global one), so several servers in one
// test process do not collide. Names: headway_<part>_<thing>[_unit], `_total` on counters.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

export function createMetricsRegistry(options: { defaultMetrics: boolean }): Registry {
  const registry = new Registry();
  // The event-loop lag histogram samples on a libuv timer; prom-client's default of every 10 ms
  // woke an idle server 100 times a second (most of its idle CPU). Once a second still shows lag.
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'headway_process_', eventLoopMonitoringPrecision: 1_000 });
  return registry;
}

/** A counter whose value is read from `read()` at scrape time. */
export function collectedCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A counter with one label whose values are read from `read()` at scrape time. */
export function collectedLabelledCounter(
  registry: Registry,
  name: string,
  help: string,
  label: string,
  read: () => Readonly<Record<string, number>>,
): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, count] of Object.entries(read())) this.inc({ [label]: value }, count);
    },
  });
}

export function collectedGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}
