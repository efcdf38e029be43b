import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Netmap } from '../client/netmap.js';
import type * as tailcfg from '../tailcfg/index.js';
import { FilterChunker } from './filter-chunks.js';

const ip = (n: number) => `100.${64 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
const rule = (srcs: string[], port = 0): tailcfg.FilterRule => ({ SrcIPs: srcs, DstPorts: [{ IP: '*', Ports: { First: port, Last: port === 0 ? 65535 : port } }] });

/** Applies PacketFilters JSON to a client netmap and returns the effective filter's accepted sources per port. */
function accepted(netmap: Netmap): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const r of netmap.packetFilter) {
    const key = JSON.stringify(r.DstPorts);
    if (!out.has(key)) out.set(key, new Set());
    for (const s of r.SrcIPs) out.get(key)!.add(s);
  }
  return out;
}

describe('FilterChunker', () => {
  it('keeps a short filter in one chunk per rule', () => {
    const chunker = new FilterChunker();
    const set = chunker.chunks('k1', () => [rule(['100.64.0.1']), rule(['100.64.0.2'], 22)]);
    assert.equal(set.size, 2);
  });

  it('splits a long source list into buckets whose union is the list, and resends one bucket when one node joins', () => {
    const chunker = new FilterChunker();
    const before = Array.from({ length: 5000 }, (_, i) => ip(i + 1));
    const after = [...before.slice(0, 1234), ip(9999), ...before.slice(1234)];
    const a = chunker.chunks('a', () => [rule(before)]);
    const b = chunker.chunks('b', () => [rule(after)]);
    assert.ok(a.size >= 8, `${a.size} chunks`);
    const client = new Netmap();
    client.apply({ PacketFilters: JSON.parse(FilterChunker.fullJson(a, false)) as Record<string, tailcfg.FilterRule[]> });
    assert.deepEqual([...accepted(client).values()][0]!.size, 5000);
    const delta = JSON.parse(FilterChunker.deltaJson(a, b)) as Record<string, tailcfg.FilterRule[] | null>;
    assert.equal(Object.keys(delta).length, 1, 'one bucket changed');
    assert.ok(JSON.stringify(delta).length < JSON.stringify(FilterChunker.fullJson(b, false)).length / 4);
    client.apply({ PacketFilters: delta });
    const sources = [...accepted(client).values()][0]!;
    assert.equal(sources.size, 5001);
    assert.ok(sources.has(ip(9999)));
  });

  it('removes chunks that are gone and replaces everything on request', () => {
    const chunker = new FilterChunker();
    const a = chunker.chunks('a', () => [rule(['100.64.0.1']), rule(['100.64.0.2'], 22)]);
    const b = chunker.chunks('b', () => [rule(['100.64.0.1'])]);
    const client = new Netmap();
    client.apply({ PacketFilters: JSON.parse(FilterChunker.fullJson(a, false)) as Record<string, tailcfg.FilterRule[]> });
    client.apply({ PacketFilters: JSON.parse(FilterChunker.deltaJson(a, b)) as Record<string, tailcfg.FilterRule[] | null> });
    assert.deepEqual(client.packetFilter, [rule(['100.64.0.1'])]);
    client.apply({ PacketFilters: JSON.parse(FilterChunker.fullJson(a, true)) as Record<string, tailcfg.FilterRule[] | null> });
    assert.equal(client.packetFilter.length, 2);
  });
});
