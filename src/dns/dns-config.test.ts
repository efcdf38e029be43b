import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDnsConfig, DnsConfigSource, parseExtraRecords, type DnsSettings } from './dns-config.js';

const base: DnsSettings = {
  magicDns: true,
  baseDomain: 'tail.example',
  overrideLocalDns: true,
  globalNameservers: ['1.1.1.1', 'https://dns.example/q'],
  splitNameservers: { 'corp.example.': ['10.0.0.53'] },
  searchDomains: ['corp.example'],
  extraRecords: [{ name: 'grafana.tail.example', type: 'A', value: '100.64.0.5' }],
};

describe('buildDnsConfig', () => {
  it('puts MagicDNS, split DNS, search domains and extra records in one config', () => {
    const config = buildDnsConfig(base);
    assert.deepEqual(config.Resolvers, [{ Addr: '1.1.1.1' }, { Addr: 'https://dns.example/q' }]);
    assert.deepEqual(config.Routes, { 'corp.example': [{ Addr: '10.0.0.53' }], 'tail.example': [] });
    assert.deepEqual(config.Domains, ['tail.example', 'corp.example']);
    assert.equal(config.Proxied, true);
    assert.deepEqual(config.ExtraRecords, [{ Name: 'grafana.tail.example', Type: 'A', Value: '100.64.0.5' }]);
  });

  it('uses the global nameservers only as fallback when local DNS is not overridden', () => {
    const config = buildDnsConfig({ ...base, overrideLocalDns: false });
    assert.equal(config.Resolvers, undefined);
    assert.deepEqual(config.FallbackResolvers, [{ Addr: '1.1.1.1' }, { Addr: 'https://dns.example/q' }]);
  });

  it('routes the suffix of an extra record outside the base domain to quad-100', () => {
    const config = buildDnsConfig({ ...base, extraRecords: [{ name: 'wiki.internal.example', type: '', value: '100.64.0.9' }] });
    assert.deepEqual(config.Routes?.['internal.example'], []);
  });

  it('turns MagicDNS off completely', () => {
    const config = buildDnsConfig({ ...base, magicDns: false, extraRecords: [] });
    assert.equal(config.Proxied, false);
    assert.deepEqual(config.Domains, ['corp.example']);
    assert.equal(config.Routes?.['tail.example'], undefined);
  });
});

describe('extra records file', () => {
  it('names the file and the entry of a bad record', () => {
    assert.throws(() => parseExtraRecords('[{"name":"a.b","value":"nope"}]', 'records.json'), /records\.json: \[0\]\.value: "nope" is not an IP address/);
    assert.throws(() => parseExtraRecords('{', 'records.json'), /records\.json: not valid JSON/);
  });

  it('reloads on change and keeps the last good records after a bad edit', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'headway-dns-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'records.json');
    await writeFile(path, JSON.stringify([{ name: 'db.tail.example', type: 'A', value: '100.64.0.7' }]));
    const source = new DnsConfigSource({ ...base, extraRecords: [], extraRecordsPath: path });
    const errors: Error[] = [];
    let changes = 0;
    source.onChange(() => changes++);
    await source.start((e) => errors.push(e));
    t.after(() => source.stop());
    assert.deepEqual(source.current().ExtraRecords, [{ Name: 'db.tail.example', Type: 'A', Value: '100.64.0.7' }]);
    const v1 = source.version;
    await writeFile(path, '[{"name": broken');
    await assert.rejects(source.reloadRecords(), /not valid JSON/);
    assert.equal(source.version, v1, 'a bad edit keeps the last good records');
    await writeFile(path, JSON.stringify([{ name: 'db.tail.example', type: 'A', value: '100.64.0.8' }]));
    await source.reloadRecords();
    assert.equal(source.current().ExtraRecords?.[0]?.Value, '100.64.0.8');
    assert.ok(source.version > v1);
    assert.ok(changes >= 2);
  });
});
