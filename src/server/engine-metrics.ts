// Prometheus metrics of the change engine, summed over the tailnets' pipelines at scrape time:
// what the engine does per event is what Headway promises to keep small, so operators can see
// it (events in, marks and frames out, caches, and how often the policy index had to rebuild).
import { collectedCounter, collectedGauge, type Registry } from '../log/metrics.js';
import type { TailnetPipeline } from './tailnet-pipeline.js';

export function registerEngineMetrics(registry: Registry, pipelines: () => Iterable<TailnetPipeline>): void {
  const sum = (read: (p: TailnetPipeline) => number) => (): number => {
    let total = 0;
    for (const p of pipelines()) total += read(p);
    return total;
  };
  collectedGauge(registry, 'headway_map_sessions', 'Open map streams (connected clients).', sum((p) => p.hub.sessionCount));
  collectedCounter(registry, 'headway_engine_events_total', 'Committed state changes the change router handled.', sum((p) => p.router.stats.events));
  collectedCounter(registry, 'headway_engine_marks_total', 'Pending-delta marks: one per recipient and changed peer.', sum((p) => p.router.stats.marks));
  collectedCounter(registry, 'headway_mapper_peer_serialisations_total', 'Peers serialised to JSON (once per change and wire form, shared by recipients).', sum((p) => p.mapper.stats.peerSerialisations));
  collectedCounter(registry, 'headway_mapper_compressions_total', 'zstd compressions of map frames and fragments.', sum((p) => p.mapper.stats.compressions));
  collectedCounter(registry, 'headway_mapper_frame_cache_hits_total', 'Map frames reused from the cycle cache instead of being built again.', sum((p) => p.mapper.stats.frameCacheHits));
  collectedCounter(registry, 'headway_policy_index_rebuilds_total', 'Updates the policy index answered by rebuilding and diffing instead of in place.', sum((p) => p.policy.index.rebuilds));
}
