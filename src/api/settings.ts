// Read-only settings for the console's DNS & settings page: the tailnet's name, DNS (MagicDNS,
// nameservers, split DNS, search domains, extra records), default key expiry and the DERP map.
// They come from the configuration file; changing them is a config edit and a reload.
import { z } from 'zod';
import { defineRoute, type Route } from './route.js';

const derpRegionSchema = z.object({
  id: z.number().int(),
  code: z.string(),
  name: z.string(),
  nodes: z.array(z.object({ name: z.string(), host: z.string(), stun_port: z.number().int().nullable(), derp_port: z.number().int().nullable() })),
});

interface RawDerpNode { Name?: unknown; HostName?: unknown; STUNPort?: unknown; DERPPort?: unknown }
interface RawDerpRegion { RegionID?: unknown; RegionCode?: unknown; RegionName?: unknown; Nodes?: unknown }

function derpRegions(map: unknown): Array<z.output<typeof derpRegionSchema>> {
  const regions = (map as { Regions?: Record<string, RawDerpRegion> } | null | undefined)?.Regions ?? {};
  return Object.values(regions).map((r) => ({
    id: Number(r.RegionID ?? 0),
    code: String(r.RegionCode ?? ''),
    name: String(r.RegionName ?? ''),
    nodes: (Array.isArray(r.Nodes) ? (r.Nodes as RawDerpNode[]) : []).map((n) => ({
      name: String(n.Name ?? ''),
      host: String(n.HostName ?? ''),
      stun_port: typeof n.STUNPort === 'number' ? n.STUNPort : null,
      derp_port: typeof n.DERPPort === 'number' ? n.DERPPort : null,
    })),
  })).sort((a, b) => a.id - b.id);
}

export const settingsRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'getSettings',
    method: 'GET',
    path: '/settings',
    group: 'settings',
    scope: 'tailnet',
    summary: 'DNS, key expiry and DERP settings in force (read-only; set in the config file)',
    response: z.object({
      tailnet: z.string(),
      server_url: z.string(),
      magic_dns: z.boolean(),
      base_domain: z.string(),
      override_local_dns: z.boolean(),
      nameservers: z.array(z.string()),
      split_dns: z.record(z.string(), z.array(z.string())),
      search_domains: z.array(z.string()),
      extra_records: z.array(z.object({ name: z.string(), type: z.string(), value: z.string() })),
      default_key_expiry_seconds: z.number().int().describe('0 = keys of new devices never expire.'),
      device_approval: z.boolean().nullable().describe('null: this server does not report device approval.'),
      derp_regions: z.array(derpRegionSchema),
    }),
    async handle({ tailnet, deps }) {
      const dns = deps.config.dns;
      return {
        tailnet: tailnet.name,
        server_url: deps.serverUrl,
        magic_dns: dns.magicDns,
        base_domain: dns.baseDomain,
        override_local_dns: dns.overrideLocalDns,
        nameservers: [...dns.nameserversGlobal],
        split_dns: Object.fromEntries(Object.entries(dns.nameserversSplit).map(([d, ns]) => [d, [...ns]])),
        search_domains: [...dns.searchDomains],
        extra_records: dns.extraRecords.map((r) => ({ name: r.name, type: r.type, value: r.value })),
        default_key_expiry_seconds: Math.round(deps.config.nodeExpiryMs / 1000),
        device_approval: tailnet.deviceApproval,
        derp_regions: derpRegions(deps.derpMap?.()),
      };
    },
  }),
];
