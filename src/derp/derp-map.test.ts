import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type * as tailcfg from '../tailcfg/index.js';
import { DerpMapSource, derpMapHostNames, embeddedDerpRegion, mergeDerpMaps, parseDerpMapText, redactUrl } from './derp-map.js';
import { waitUntil } from './testing.js';

const HEADSCALE_STYLE_YAML = `
regions:
  1: null # remove Tailscale's region 1
  900:
    regionid: 900
    regioncode: custom
    regionname: My Region
    nodes:
      - name: 900a
        regionid: 900
        hostname: myderp.example.com
        ipv4: 198.51.100.1
        ipv6: 2001:db8::1
        stunport: 0
        stunonly: false
        derpport: 0
`;

function region(id: number, code: string, nodeName = `${id}a`, host = `derp${id}.example.com`): tailcfg.DERPRegion {
  return { RegionID: id, RegionCode: code, RegionName: code.toUpperCase(), Nodes: [{ Name: nodeName, RegionID: id, HostName: host }] };
}

function mapJson(regions: tailcfg.DERPRegion[]): string {
  return JSON.stringify({ Regions: Object.fromEntries(regions.map((r) => [String(r.RegionID), r])) });
}

describe('embeddedDerpRegion', () => {
  const cases: Array<{ name: string; serverUrl: string; host: string; port: number; insecure?: true }> = [
    { name: 'https without a port uses 443', serverUrl: 'https://hw.example.com', host: 'hw.example.com', port: 443 },
    { name: 'an explicit port is kept', serverUrl: 'https://hw.example.com:8443/', host: 'hw.example.com', port: 8443 },
    { name: 'http without a port uses 80, and is marked InsecureForTests', serverUrl: 'http://hw.example.com', host: 'hw.example.com', port: 80, insecure: true },
    { name: 'an IPv6 literal loses its brackets', serverUrl: 'https://[2001:db8::5]:444', host: '2001:db8::5', port: 444 },
  ];
  for (const { name, serverUrl, host, port, insecure } of cases) {
    it(name, () => {
      const r = embeddedDerpRegion({ serverUrl, regionId: 999, regionCode: 'headway', regionName: 'Headway Embedded DERP', stunPort: 3478 });
      assert.deepEqual(r, {
        RegionID: 999,
        RegionCode: 'headway',
        RegionName: 'Headway Embedded DERP',
        Nodes: [{ Name: '999', RegionID: 999, HostName: host, DERPPort: port, STUNPort: 3478, ...(insecure ? { InsecureForTests: true } : {}) }],
      });
    });
  }

  it('carries the ipv4/ipv6 overrides and rejects bad ones naming the key', () => {
    const r = embeddedDerpRegion({ serverUrl: 'https://a.example', regionId: 901, regionCode: 'x', regionName: 'X', ipv4: '203.0.113.10', ipv6: '2001:db8::10' });
    assert.equal(r.Nodes[0]!.IPv4, '203.0.113.10');
    assert.equal(r.Nodes[0]!.IPv6, '2001:db8::10');
    assert.throws(() => embeddedDerpRegion({ serverUrl: 'https://a.example', regionId: 901, regionCode: 'x', regionName: 'X', ipv4: '2001:db8::1' }), {
      code: 'HW_DERP_MAP_INVALID',
      message: /derp\.server \(embedded region\): Regions\.901\.Nodes\[0\]\.IPv4: "2001:db8::1" is not an IPv4 address/,
    });
  });

  it('rejects a server_url without a host and a region id of 0', () => {
    assert.throws(() => embeddedDerpRegion({ serverUrl: 'not a url', regionId: 999, regionCode: 'x', regionName: 'X' }), { code: 'HW_DERP_BAD_SERVER_URL' });
    assert.throws(() => embeddedDerpRegion({ serverUrl: 'https://a.example', regionId: 0, regionCode: 'x', regionName: 'X' }), { code: 'HW_DERP_MAP_INVALID' });
  });
});

describe('parseDerpMapText', () => {
  it("reads headscale's lower-case YAML, with null removing a region", () => {
    const layer = parseDerpMapText(HEADSCALE_STYLE_YAML, 'derp.yaml');
    assert.equal(layer.regions.get(1), null);
    assert.deepEqual(layer.regions.get(900), {
      RegionID: 900,
      RegionCode: 'custom',
      RegionName: 'My Region',
      Nodes: [
        { Name: '900a', RegionID: 900, HostName: 'myderp.example.com', IPv4: '198.51.100.1', IPv6: '2001:db8::1', STUNPort: 0, STUNOnly: false, DERPPort: 0 },
      ],
    });
  });

  it('reads JSON with Go field names and keeps HomeParams and omitDefaultRegions', () => {
    const text = JSON.stringify({ Regions: { '999': region(999, 'hs') }, HomeParams: { RegionScore: { '999': 0.8 } }, omitDefaultRegions: true });
    const layer = parseDerpMapText(text, 'map.json');
    assert.deepEqual(layer.regions.get(999), region(999, 'hs'));
    assert.deepEqual(layer.homeParams, { RegionScore: { '999': 0.8 } });
    assert.equal(layer.omitDefaultRegions, true);
  });

  const invalid: Array<{ name: string; text: string; code: string; message: RegExp }> = [
    { name: 'YAML syntax', text: 'regions: [', code: 'HW_DERP_MAP_PARSE', message: /^bad\.yaml:\d+:\d+: not valid YAML/ },
    { name: 'no Regions', text: 'foo: 1', code: 'HW_DERP_MAP_INVALID', message: /^bad\.yaml: Regions: is missing/ },
    { name: 'a region id of 0', text: 'Regions: {0: null}', code: 'HW_DERP_MAP_INVALID', message: /Regions\.0: region ids must be positive integers/ },
    { name: 'a region id that is not a number', text: 'Regions: {abc: null}', code: 'HW_DERP_MAP_INVALID', message: /Regions\.abc: region ids/ },
    {
      name: 'RegionID differing from its key',
      text: 'Regions: {900: {RegionID: 901, RegionCode: x, Nodes: [{Name: a, HostName: h}]}}',
      code: 'HW_DERP_MAP_INVALID',
      message: /Regions\.900\.RegionID: 901 differs from its key 900/,
    },
    { name: 'no nodes', text: 'Regions: {900: {RegionCode: x, Nodes: []}}', code: 'HW_DERP_MAP_INVALID', message: /Regions\.900\.Nodes: is missing or empty/ },
    {
      name: 'a node without HostName',
      text: 'Regions: {900: {RegionCode: x, Nodes: [{Name: a}]}}',
      code: 'HW_DERP_MAP_INVALID',
      message: /Regions\.900\.Nodes\[0\]\.HostName: is missing/,
    },
    {
      name: 'two nodes with one name',
      text: 'Regions: {900: {RegionCode: x, Nodes: [{Name: a, HostName: h}, {Name: a, HostName: i}]}}',
      code: 'HW_DERP_MAP_INVALID',
      message: /Regions\.900\.Nodes\[1\]\.Name: "a" is used by an earlier node/,
    },
    {
      name: 'a bad IPv4',
      text: 'Regions: {900: {RegionCode: x, Nodes: [{Name: a, HostName: h, IPv4: 300.1.1.1}]}}',
      code: 'HW_DERP_MAP_INVALID',
      message: /Regions\.900\.Nodes\[0\]\.IPv4: "300\.1\.1\.1" is not an IPv4 address/,
    },
    {
      name: 'a STUN port out of range',
      text: 'Regions: {900: {RegionCode: x, Nodes: [{Name: a, HostName: h, STUNPort: 70000}]}}',
      code: 'HW_DERP_MAP_INVALID',
      message: /Nodes\[0\]\.STUNPort: 70000 is not an integer in -1\.\.65535/,
    },
    {
      name: 'a field given twice in different case',
      text: 'Regions: {900: {RegionCode: x, regioncode: y, Nodes: [{Name: a, HostName: h}]}}',
      code: 'HW_DERP_MAP_INVALID',
      message: /Regions\.900\.RegionCode: is given twice/,
    },
  ];
  for (const { name, text, code, message } of invalid) {
    it(`rejects ${name} with an error naming the file and key`, () => {
      assert.throws(() => parseDerpMapText(text, 'bad.yaml'), { code, message });
    });
  }

  it('accepts "none" to disable an address family', () => {
    const layer = parseDerpMapText('Regions: {900: {RegionCode: x, Nodes: [{Name: a, HostName: h, IPv6: none}]}}', 'm.yaml');
    assert.equal(layer.regions.get(900)!.Nodes[0]!.IPv6, 'none');
  });
});

describe('mergeDerpMaps', () => {
  it('lets later sources replace regions by id and remove them with null', () => {
    const merged = mergeDerpMaps([
      { source: 'url', layer: { regions: new Map([[1, region(1, 'nyc')], [2, region(2, 'sfo')]]) } },
      { source: 'file', layer: { regions: new Map<number, tailcfg.DERPRegion | null>([[1, null], [2, region(2, 'sfo2')]]) } },
      { source: 'embedded', layer: { regions: new Map([[999, region(999, 'hw')]]) } },
    ]);
    assert.deepEqual(Object.keys(merged.Regions), ['2', '999']);
    assert.equal(merged.Regions['2']!.RegionCode, 'sfo2');
  });

  it('refuses one node name in two regions, naming both sources', () => {
    assert.throws(
      () =>
        mergeDerpMaps([
          { source: 'a.yaml', layer: { regions: new Map([[900, region(900, 'a', 'same')]]) } },
          { source: 'b.yaml', layer: { regions: new Map([[901, region(901, 'b', 'same')]]) } },
        ]),
      { code: 'HW_DERP_MAP_INVALID', message: /node name "same" is used by region 900 \(from a\.yaml\) and region 901 \(from b\.yaml\)/ },
    );
  });

  it('lists every node host name once, for /bootstrap-dns', () => {
    const merged = mergeDerpMaps([{ source: 'x', layer: { regions: new Map([[900, region(900, 'a', '900a', 'same.example')], [901, region(901, 'b', '901a', 'same.example')]]) } }]);
    assert.deepEqual(derpMapHostNames(merged), ['same.example']);
  });

  it('drops home scores of regions that are not in the result', () => {
    const merged = mergeDerpMaps([
      { source: 'x', layer: { regions: new Map([[900, region(900, 'a')]]), homeParams: { RegionScore: { '900': 0.5, '1': 2 } } } },
    ]);
    assert.deepEqual(merged.HomeParams, { RegionScore: { '900': 0.5 } });
  });
});

describe('redactUrl', () => {
  it('drops credentials and query strings', () => {
    assert.equal(redactUrl('https://user:secret@maps.example.com/derp.json?token=abc'), 'https://maps.example.com/derp.json?…');
    assert.equal(redactUrl('https://maps.example.com/derp.json'), 'https://maps.example.com/derp.json');
  });
});

describe('DerpMapSource', () => {
  let dir: string;
  let server: Server;
  let url: string;
  let body = mapJson([region(1, 'nyc')]);
  let status = 200;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'headway-derp-map-'));
    server = createServer((_req, res) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/derpmap/default`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const embedded = embeddedDerpRegion({ serverUrl: 'https://hw.example.com', regionId: 999, regionCode: 'headway', regionName: 'Headway' });

  it('merges a URL, a file and the embedded region, in that order of precedence', async () => {
    body = mapJson([region(1, 'nyc'), region(900, 'from-url')]);
    status = 200;
    const path = join(dir, 'derp.yaml');
    await writeFile(path, HEADSCALE_STYLE_YAML);
    const source = await DerpMapSource.start({ embeddedRegion: embedded, urls: [url], paths: [path], autoUpdate: false });
    try {
      const map = source.current();
      assert.deepEqual(Object.keys(map.Regions), ['900', '999']);
      assert.equal(map.Regions['900']!.RegionCode, 'custom', 'the file overrides the URL');
      assert.equal(map.Regions['999']!.Nodes[0]!.HostName, 'hw.example.com');
    } finally {
      source.close();
    }
  });

  it('fires change once per real change, and keeps the last good map when the URL fails', async () => {
    body = mapJson([region(1, 'nyc')]);
    status = 200;
    const registry = new Registry();
    const source = await DerpMapSource.start({ embeddedRegion: embedded, urls: [url], autoUpdate: false, metrics: registry });
    const changes: tailcfg.DERPMap[] = [];
    source.on('change', (map) => changes.push(map));
    try {
      assert.equal(await source.refresh(), false, 'same content');
      assert.equal(changes.length, 0);

      body = mapJson([region(1, 'nyc'), region(2, 'sfo')]);
      assert.equal(await source.refresh(), true);
      assert.equal(changes.length, 1);
      assert.deepEqual(Object.keys(changes[0]!.Regions), ['1', '2', '999']);
      assert.equal(source.current(), changes[0]);

      status = 500;
      assert.equal(await source.refresh(), false);
      assert.deepEqual(Object.keys(source.current().Regions), ['1', '2', '999'], 'last good map kept');
      assert.equal(source.failures().length, 1);
      assert.equal(source.failures()[0]!.error.code, 'HW_DERP_MAP_FETCH');

      status = 200;
      body = '{"Regions": {"2": {"RegionCode": "sfo", "Nodes": [{"Name": "2a"}]}}}';
      assert.equal(await source.refresh(), false, 'an invalid body changes nothing');
      assert.equal(source.failures()[0]!.error.code, 'HW_DERP_MAP_INVALID');

      body = mapJson([region(2, 'sfo')]);
      assert.equal(await source.refresh(), true);
      assert.deepEqual(Object.keys(source.current().Regions), ['2', '999']);
      assert.equal(changes.length, 2);
      assert.equal(source.failures().length, 0);
      assert.match(await registry.metrics(), /headway_derp_map_loads_total\{kind="url",result="error"\} 2/);
    } finally {
      source.close();
    }
  });

  it('refreshes by itself every update frequency', async () => {
    body = mapJson([region(3, 'ams')]);
    status = 200;
    const source = await DerpMapSource.start({ urls: [url], updateFrequencyMs: 20 });
    try {
      const changed = new Promise<tailcfg.DERPMap>((resolve) => source.once('change', resolve));
      body = mapJson([region(4, 'fra')]);
      assert.deepEqual(Object.keys((await changed).Regions), ['4']);
    } finally {
      source.close();
    }
  });

  it('starts from a reachable file even when a URL is down, and picks the URL up later', async () => {
    const path = join(dir, 'only.json');
    await writeFile(path, mapJson([region(900, 'file')]));
    status = 503;
    const source = await DerpMapSource.start({ urls: [url], paths: [path], updateFrequencyMs: 3_600_000, retryMs: 20 });
    try {
      assert.deepEqual(Object.keys(source.current().Regions), ['900']);
      body = mapJson([region(5, 'lon')]);
      status = 200;
      await waitUntil('the URL loads on retry', () => source.current().Regions['5'] !== undefined);
    } finally {
      source.close();
    }
  });

  it('refuses to start with an invalid or missing file, or with no regions at all', async () => {
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'Regions: {900: {RegionCode: x, Nodes: [{Name: a}]}}');
    await assert.rejects(DerpMapSource.start({ paths: [broken] }), { code: 'HW_DERP_MAP_INVALID', message: new RegExp(`${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: Regions`) });
    await assert.rejects(DerpMapSource.start({ paths: [join(dir, 'missing.yaml')] }), { code: 'HW_DERP_MAP_READ', message: /missing\.yaml: cannot read \(ENOENT\)/ });
    await assert.rejects(DerpMapSource.start({}), { code: 'HW_DERP_MAP_EMPTY' });
  });

  it('keeps the last good contents of a file that turns invalid', async () => {
    const path = join(dir, 'changing.yaml');
    await writeFile(path, mapJson([region(900, 'one')]));
    const source = await DerpMapSource.start({ paths: [path], autoUpdate: false });
    try {
      await writeFile(path, 'Regions: [');
      assert.equal(await source.refresh(), false);
      assert.equal(source.current().Regions['900']!.RegionCode, 'one');
      assert.equal(source.failures()[0]!.error.code, 'HW_DERP_MAP_PARSE');
    } finally {
      source.close();
    }
  });
});
