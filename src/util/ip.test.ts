import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatIP, parseIP, parsePrefix, formatPrefix, tryParseIP, prefixContains, prefixLast, IPParseError } from './ip.js';

describe('ip', () => {
  const roundTrips = [
    { name: 'v4', input: '100.64.0.1', want: '100.64.0.1' },
    { name: 'v6 compressed middle', input: 'fd7a:115c:a1e0::1837:bd28', want: 'fd7a:115c:a1e0::1837:bd28' },
    { name: 'v6 upper case', input: 'FD7A:115C:A1E0:0:0:0:0:1', want: 'fd7a:115c:a1e0::1' },
    { name: 'v6 all zero', input: '::', want: '::' },
    { name: 'v6 longest run wins', input: '1:0:0:2:0:0:0:3', want: '1:0:0:2::3' },
    { name: 'v6 single zero group is not compressed', input: '1:0:2:3:4:5:6:7', want: '1:0:2:3:4:5:6:7' },
    { name: 'v4-mapped', input: '::ffff:1.2.3.4', want: '::ffff:1.2.3.4' },
  ];
  for (const { name, input, want } of roundTrips) {
    it(`formats ${name} as netip does`, () => assert.equal(formatIP(parseIP(input)), want));
  }

  it('rejects malformed addresses', () => {
    for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', '1::2::3', 'x', '', '1:2:3:4:5:6:7:8:9']) {
      assert.equal(tryParseIP(bad), null, bad);
    }
  });

  it('parses prefixes and masks host bits unless strict', () => {
    assert.equal(formatPrefix(parsePrefix('10.1.2.3/8')), '10.0.0.0/8');
    assert.throws(() => parsePrefix('10.1.2.3/8', { strict: true }), /host bits set \(want 10\.0\.0\.0\/8\)/);
    assert.throws(() => parsePrefix('100.64.0.0/33'), /length must be 0-32/);
    // Found by fuzzing (issue 17): an empty or spaced length crashed the error path.
    for (const bad of ['100.64.0.0/', '100.64.0.0/ 8', 'fd7a::/', '10.0.0.0/-1', '10.0.0.0/1e1']) {
      assert.throws(() => parsePrefix(bad), IPParseError, bad);
      assert.throws(() => parsePrefix(bad, { strict: true }), IPParseError, bad);
    }
    const p = parsePrefix('100.64.0.0/10');
    assert.equal(formatIP({ family: 4, value: prefixLast(p) }), '100.127.255.255');
    assert.ok(prefixContains(p, parseIP('100.100.100.100')));
    assert.ok(!prefixContains(p, parseIP('fd7a:115c:a1e0::1')));
  });
});
