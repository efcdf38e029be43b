// The mapper's and hub's share of a reconnect storm, in one process and without sockets: a
// fullmesh tailnet of N nodes (the network benchmark's workload and stored devices) where every
// node comes online and opens its map session in turn, as in `network --policy fullmesh`, with
// the presence window shortened so that online notifications flow during the storm. Then one
// endpoint change is flushed to every session while P online marks are pending in each (the
// first change after a storm). Reports CPU time, frames and bytes; Noise and socket writes are
// not included (the network benchmark measures those).
// Run: `node dist/src/mapper/storm.bench.js [nodes (2000)] [pendingOnline (200)]`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchDevice } from '../bench/network-server.js';
import { storeWorkload } from '../bench/seed.js';
import { engineWorkload } from '../bench/workload.js';
import { configFromObject } from '../config/index.js';
import type { FrameSink } from '../control/session/map-session.js';
import { DnsConfigSource } from '../dns/index.js';
import { silentLogger } from '../log/index.js';
import type { NodeId } from '../model/index.js';
import { TailnetPipeline } from '../server/index.js';
import { ServerState } from '../state/index.js';
import { openStore } from '../store/index.js';

async function main(): Promise<void> {
  const nodes = Number(process.argv[2] ?? 2000);
  const pendingOnline = Number(process.argv[3] ?? 200);
  const dir = await mkdtemp(join(tmpdir(), 'headway-storm-bench-'));
  const store = await openStore(configFromObject({ data_dir: dir, log: { level: 'silent' } }, { source: 'storm bench', baseDir: dir }));
  await storeWorkload(store, engineWorkload('fullmesh', nodes, 42), benchDevice(42), { policy: true });
  const state = await ServerState.load(store, { flushIntervalMs: 0 });
  const tailnet = state.defaultTailnet;
  const dns = new DnsConfigSource({ magicDns: true, baseDomain: 'bench.internal', overrideLocalDns: false, globalNameservers: [], splitNameservers: {}, searchDomains: [], extraRecords: [] });
  const pipeline = new TailnetPipeline(tailnet, { dns, derp: { current: () => ({ Regions: {} }), version: 1 }, logger: silentLogger() }, {
    coalesceMs: 50, keepAliveMs: 3_600_000, nodeExpiryMs: 0, ephemeralInactivityMs: 3_600_000, offlineGraceMs: 1_000, presenceWindowMs: 100,
  });
  let frames = 0;
  let bytes = 0;
  const sink: FrameSink = { write: (frame) => { frames++; bytes += frame.length; return true; }, onceDrain: () => {}, end: () => {} };
  const ids: NodeId[] = [...tailnet.nodes()].map((node) => node.id);
  try {
    for (let round = 1; round <= 2; round++) {
      for (const id of ids) {
        tailnet.setPresence(id, { online: false, capVersion: 130 });
        for (const session of [...(pipeline.hub.sessionsOf(id) ?? [])]) pipeline.hub.remove(session);
      }
      await sleep(300);
      frames = bytes = 0;
      const cpu = process.cpuUsage();
      for (let i = 0; i < ids.length; i++) {
        tailnet.setPresence(ids[i]!, { online: true, capVersion: 130 });
        pipeline.hub.open(ids[i]!, 130, sink);
        // Let the presence timer fire now and then, as it does between arrivals.
        if (i % 100 === 99) await sleep(1);
      }
      await sleep(300);
      const used = process.cpuUsage(cpu);
      console.log(`storm ${round}: ${nodes} sessions opened, ${((used.user + used.system) / 1000).toFixed(0)} ms CPU, ${frames} frames, ${(bytes / 1e6).toFixed(1)} MB`);
    }
    const flushes: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < pendingOnline; i++) tailnet.setPresence(ids[(round * pendingOnline + i) % ids.length]!, { online: false, capVersion: 130 });
      pipeline.hub.flushNow();
      await sleep(300);
      for (let i = 0; i < pendingOnline; i++) tailnet.setPresence(ids[(round * pendingOnline + i) % ids.length]!, { online: true, capVersion: 130 });
      await tailnet.applyLiveUpdate(ids[1]!, { endpoints: [`198.51.100.1:${1000 + round}`] });
      frames = 0;
      const cpu = process.cpuUsage();
      pipeline.hub.flushNow();
      const used = process.cpuUsage(cpu);
      flushes.push(`${((used.user + used.system) / 1000).toFixed(1)} ms CPU for ${frames} frames`);
    }
    console.log(`one endpoint change with ${pendingOnline} online marks pending in each session: ${flushes.join(', ')}`);
  } finally {
    pipeline.close();
    await state.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`storm bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
