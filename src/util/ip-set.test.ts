import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPSet, IPSetBuilder, rangePrefixBits } from './ip-set.js';
import { parseIP, parsePrefix, formatPrefix } from './ip.js';

function set(...texts: string[]): IPSet {
  const builder = new IPSetBuilder();
  for (const text of texts) assert.ok(builder.tryAddText(text), text);
  return builder.build();
}

describe('IPSet', () => {
  it('renders the Tailscale wildcard source as two ranges and a prefix', () => {
    const cgnat = set('100.64.0.0/10').difference(set('100.115.92.0/23'));
    const all = cgnat.union(set('fd7a:115c:a1e0::/48'));
    assert.deepEqual(all.toStrings(), ['100.64.0.0-100.115.91.255', '100.115.94.0-100.127.255.255', 'fd7a:115c:a1e0::/48']);
  });

  const renderings = [
    { name: 'a single address bare', input: ['100.64.0.1'], want: ['100.64.0.1'] },
    { name: 'a single v6 address bare', input: ['fd7a:115c:a1e0::1'], want: ['fd7a:115c:a1e0::1'] },
    { name: 'an exact CIDR as prefix', input: ['10.0.0.0/8'], want: ['10.0.0.0/8'] },
    { name: 'two adjacent aligned addresses as /31', input: ['100.64.0.2', '100.64.0.3'], want: ['100.64.0.2/31'] },
    { name: 'an unaligned run as a range', input: ['100.64.0.1', '100.64.0.2'], want: ['100.64.0.1-100.64.0.2'] },
    { name: 'everything v4 as /0', input: ['0.0.0.0/0'], want: ['0.0.0.0/0'] },
    { name: 'everything v6 as /0', input: ['::/0'], want: ['::/0'] },
    { name: 'v6 range', input: ['2000::-3fff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'], want: ['2000::-3fff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'] },
    { name: 'overlapping inputs merged', input: ['10.0.0.0/8', '10.33.0.0/16', '11.0.0.1'], want: ['10.0.0.0/8', '11.0.0.1'] },
  ];
  for (const { name, input, want } of renderings) {
    it(`renders ${name}`, () => assert.deepEqual(set(...input).toStrings(), want));
  }

  it('answers membership and overlap questions', () => {
    const s = set('10.0.0.0/8', '100.64.0.5', 'fd7a:115c:a1e0::/48');
    assert.ok(s.contains(parseIP('10.1.2.3')));
    assert.ok(!s.contains(parseIP('11.0.0.0')));
    assert.ok(s.contains(parseIP('100.64.0.5')));
    assert.ok(!s.contains(parseIP('100.64.0.6')));
    assert.ok(s.contains(parseIP('fd7a:115c:a1e0::abcd')));
    assert.ok(s.overlapsPrefix(parsePrefix('10.33.0.0/16')));
    assert.ok(s.overlapsPrefix(parsePrefix('0.0.0.0/0')));
    assert.ok(!s.overlapsPrefix(parsePrefix('192.168.0.0/16')));
    assert.ok(s.coversPrefix(parsePrefix('10.33.0.0/16')));
    assert.ok(!s.coversPrefix(parsePrefix('0.0.0.0/0')));
    assert.ok(s.covers(set('10.1.0.0/16', '100.64.0.5')));
    assert.ok(!s.covers(set('10.1.0.0/16', '100.64.0.6')));
    assert.ok(s.overlaps(set('100.64.0.0/24')));
    assert.ok(!s.overlaps(set('192.168.1.0/24', '::1')));
  });

  it('computes intersection and difference over both families', () => {
    const a = set('10.0.0.0/8', 'fd00::/8');
    const b = set('10.128.0.0/9', '11.0.0.0/8', 'fd00::1');
    assert.deepEqual(a.intersect(b).toStrings(), ['10.128.0.0/9', 'fd00::1']);
    assert.deepEqual(a.difference(b).toStrings(), ['10.0.0.0/9', 'fd00::', 'fd00::2-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']);
    assert.ok(a.difference(a).isEmpty());
    assert.ok(a.union(b).covers(a));
  });

  it('decomposes runs into minimal prefixes', () => {
    const prefixes = set('100.64.0.1-100.64.0.6').prefixes().map(formatPrefix);
    assert.deepEqual(prefixes, ['100.64.0.1/32', '100.64.0.2/31', '100.64.0.4/31', '100.64.0.6/32']);
    assert.equal(rangePrefixBits(4, 0n, 255n), 24);
    assert.equal(rangePrefixBits(4, 1n, 2n), -1);
  });

  it('builds a set of many scattered addresses', () => {
    const builder = new IPSetBuilder();
    for (let i = 999; i >= 0; i--) {
      builder.addV4(0x64400000 + i * 2);
      builder.addV6((0xfd7a115ca1e0n << 80n) | BigInt(i * 2));
    }
    const s = builder.build();
    assert.equal(s.rangeCount, 2000);
    assert.ok(s.containsV4(0x64400000 + 1998));
    assert.ok(!s.containsV4(0x64400000 + 1));
    assert.equal(s.toStrings()[0], '100.64.0.0');
  });
});
