// Address ranges with a fixed meaning in Tailscale policies.
import { IPSet, IPSetBuilder } from '../util/ip-set.js';
import { parsePrefix } from '../util/ip.js';

function setOf(...prefixes: string[]): IPSet {
  const b = new IPSetBuilder();
  for (const p of prefixes) b.addPrefix(parsePrefix(p));
  return b.build();
}

/** Tailscale's address space as `*` means it in sources: CGNAT minus quad-100's /23, plus the ULA /48. */
export const TAILSCALE_SPACE: IPSet = setOf('100.64.0.0/10').difference(setOf('100.115.92.0/23')).union(setOf('fd7a:115c:a1e0::/48'));

/** autogroup:internet: public unicast space, i.e. everything but private, CGNAT, link-local and Tailscale ranges. */
export const INTERNET: IPSet = setOf('0.0.0.0/0', '2000::/3').difference(
  setOf('10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', 'fc00::/7', 'fe80::/10', 'fd7a:115c:a1e0::/48'),
);

/**
 * autogroup:internet as the service writes it in DstPorts: every run as `first-last`, even
 * the one that is a CIDR (`2000::-3fff:...`).
 */
export const INTERNET_DST_STRINGS: readonly string[] = INTERNET.ranges().map((r) => {
  const first = IPSet.of({ addr: { family: r.family, value: r.first }, bits: r.family === 4 ? 32 : 128 }).toStrings()[0]!;
  const last = IPSet.of({ addr: { family: r.family, value: r.last }, bits: r.family === 4 ? 32 : 128 }).toStrings()[0]!;
  return `${first}-${last}`;
});
