import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseIP } from '../util/ip.js';
import { AddressPool } from './address-pool.js';

const v = (text: string) => parseIP(text).value;

describe('AddressPool', () => {
  const capacities = [
    { name: 'the whole CGNAT range less network, broadcast, quad-100 and ChromeOS', prefix: '100.64.0.0/10', want: 4_194_304n - 2n - 256n - 512n },
    { name: 'a /30 (network and broadcast out)', prefix: '100.64.0.0/30', want: 2n },
    { name: 'a /31 (both usable, RFC 3021)', prefix: '100.64.0.0/31', want: 2n },
    { name: 'a /32', prefix: '100.64.0.9/32', want: 1n },
    { name: 'a prefix that is all quad-100', prefix: '100.100.100.0/24', want: 0n },
    { name: 'a small IPv6 prefix (anycast and ::53 out)', prefix: 'fd7a:115c:a1e0::/120', want: 254n },
    { name: 'the Tailscale IPv6 range less its special ranges', prefix: 'fd7a:115c:a1e0::/48', want: (1n << 80n) - 1n - 1n - (1n << 64n) * 2n - (1n << 24n) },
  ];
  for (const { name, prefix, want } of capacities) {
    it(`counts usable addresses of ${name}`, () => assert.equal(new AddressPool(prefix).capacity, want));
  }

  it('skips reserved ranges and wraps around at the end', () => {
    const pool = new AddressPool('100.100.100.0/23');
    assert.equal(pool.format(pool.nextUsable(pool.first)), '100.100.101.0');
    assert.equal(pool.format(pool.nextUsable(v('100.100.101.254'))), '100.100.101.254');
    assert.equal(pool.format(pool.nextUsable(v('100.100.101.255'))), '100.100.101.0', 'broadcast skipped, wrapped');
    const v6 = new AddressPool('fd7a:115c:a1e0::/64');
    assert.equal(v6.format(v6.nextUsable(v6.first)), 'fd7a:115c:a1e0::1');
    assert.equal(v6.format(v6.nextUsable(v('fd7a:115c:a1e0::53'))), 'fd7a:115c:a1e0::54');
    const wide = new AddressPool('fd7a:115c:a1e0::/48');
    assert.equal(wide.format(wide.nextUsable(v('fd7a:115c:a1e0:b1a::5'))), 'fd7a:115c:a1e0:b1b::');
    assert.equal(wide.isUsable(v('fd7a:115c:a1e0:ab12:4843:cd96:6200:1')), false);
    assert.equal(wide.isUsable(v('fd7a:115c:a1e0:efe3::1')), false);
    assert.equal(wide.isUsable(v('fd7a:115c:a1e0:efe4::1')), true);
  });

  it('draws random addresses only from the usable ones', () => {
    const pool = new AddressPool('100.115.92.0/22');
    for (let i = 0; i < 2000; i++) {
      const value = pool.randomUsable();
      assert.ok(pool.isUsable(value), pool.format(value));
    }
  });

  it('treats addresses outside the prefix as not usable', () => {
    const pool = new AddressPool('100.64.0.0/24');
    assert.equal(pool.isUsable(v('100.64.1.1')), false);
    assert.equal(pool.parse('fd7a:115c:a1e0::1'), undefined);
    assert.equal(pool.parse('not an address'), undefined);
  });
});
