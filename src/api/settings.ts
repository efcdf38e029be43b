// The console's DNS & settings page: the tailnet's display name, default key expiry, device
// approval and DNS (MagicDNS, nameservers, split DNS, search domains, extra records), read and
// changed here; the DERP map is shown. A tailnet without DNS of its own uses the config file's
// dns section; the MagicDNS base domain and the DERP map stay server-wide (config file).
import { z } from 'zod';
import type { Config } from '../config/index.js';
import type { TailnetDns } from '../model/index.js';
import type { TailnetState } from '../state/index.js';
import { tryParseIP } from '../util/ip.js';
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

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;
const MAX_KEY_EXPIRY_SECONDS = 10 * 365 * 86_400;

const ipText = z.string().superRefine((text, ctx) => {
  if (tryParseIP(text) === null) ctx.addIssue({ code: 'custom', input: text, message: `${JSON.stringify(text)} is not an IP address` });
});
/** A resolver as the config file takes it: an IP address, or an https:// URL (DNS over HTTPS). */
const nameserverText = z.string().superRefine((text, ctx) => {
  if (tryParseIP(text) !== null) return;
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:') ctx.addIssue({ code: 'custom', input: text, message: `${JSON.stringify(text)} is not an IP address or an https:// URL` });
});
const dnsName = z.string().superRefine((text, ctx) => {
  if (!DNS_NAME.test(text)) ctx.addIssue({ code: 'custom', input: text, message: `${JSON.stringify(text)} is not a domain name` });
});

const dnsSchema = z.object({
  magic_dns: z.boolean().describe('MagicDNS: devices reach each other as `<name>.<base_domain>`.'),
  base_domain: z.string().describe('The MagicDNS suffix (server-wide: `dns.base_domain` of the config).'),
  override_local_dns: z.boolean().describe('Devices use `nameservers` instead of their own resolver.'),
  nameservers: z.array(z.string()),
  split_dns: z.record(z.string(), z.array(z.string())).describe('Domain to the nameservers that answer for it.'),
  search_domains: z.array(z.string()),
  extra_records: z.array(z.object({ name: z.string(), type: z.string(), value: z.string() })),
});

const dnsInput = z.strictObject({
  magic_dns: z.boolean(),
  override_local_dns: z.boolean(),
  nameservers: z.array(nameserverText).max(32),
  split_dns: z.record(z.string(), z.array(nameserverText).min(1).max(32)).superRefine((split, ctx) => {
    for (const domain of Object.keys(split)) {
      if (!DNS_NAME.test(domain)) ctx.addIssue({ code: 'custom', path: [domain], input: domain, message: `${JSON.stringify(domain)} is not a domain name` });
    }
  }),
  search_domains: z.array(dnsName).max(32),
  extra_records: z.array(z.strictObject({
    name: dnsName,
    type: z.enum(['A', 'AAAA', '']).default('').describe('`A` or `AAAA`; empty: decided by the value.'),
    value: ipText,
  }).superRefine((record, ctx) => {
    const family = tryParseIP(record.value)?.family;
    if ((record.type === 'A' && family === 6) || (record.type === 'AAAA' && family === 4)) {
      ctx.addIssue({ code: 'custom', path: ['value'], input: record.value, message: `${record.value} is not an IPv${record.type === 'A' ? 4 : 6} address, as a ${record.type} record needs` });
    }
  })).max(1000),
}).describe('The tailnet\'s own DNS; null goes back to the config file\'s dns section.');

const settingsSchema = z.object({
  tailnet: z.string().describe('The tailnet\'s API name (`?tailnet=`).'),
  display_name: z.string().describe('The tailnet\'s name as the console shows it; \'\' = its API name.'),
  server_url: z.string(),
  default_key_expiry_seconds: z.number().int().describe('Key lifetime of new untagged devices; 0 = never expire.'),
  default_key_expiry_source: z.enum(['tailnet', 'config']).describe('`tailnet`: set here; `config`: node_expiry of the config file.'),
  device_approval: z.boolean().nullable().describe('null: this server does not report device approval.'),
  dns_source: z.enum(['tailnet', 'config']).describe('`tailnet`: the tailnet\'s own DNS; `config`: the config file\'s dns section.'),
  ...dnsSchema.shape,
  derp_regions: z.array(derpRegionSchema),
});

/** The DNS a tailnet's devices receive, in the API's spelling. */
export function effectiveDns(tailnet: TailnetState, config: Config): z.output<typeof dnsSchema> {
  const own = tailnet.settings.dns;
  if (own !== null) {
    return {
      magic_dns: own.magicDns, base_domain: config.dns.baseDomain, override_local_dns: own.overrideLocalDns,
      nameservers: [...own.nameservers],
      split_dns: Object.fromEntries(Object.entries(own.splitDns).map(([d, ns]) => [d, [...ns]])),
      search_domains: [...own.searchDomains],
      extra_records: own.extraRecords.map((r) => ({ ...r })),
    };
  }
  const dns = config.dns;
  return {
    magic_dns: dns.magicDns, base_domain: dns.baseDomain, override_local_dns: dns.overrideLocalDns,
    nameservers: [...dns.nameserversGlobal],
    split_dns: Object.fromEntries(Object.entries(dns.nameserversSplit).map(([d, ns]) => [d, [...ns]])),
    search_domains: [...dns.searchDomains],
    extra_records: dns.extraRecords.map((r) => ({ name: r.name, type: r.type, value: r.value })),
  };
}

function tailnetDnsFrom(input: z.output<typeof dnsInput>): TailnetDns {
  const trim = (domain: string) => domain.replace(/^\.+|\.+$/g, '').toLowerCase();
  return {
    magicDns: input.magic_dns,
    overrideLocalDns: input.override_local_dns,
    nameservers: input.nameservers,
    splitDns: Object.fromEntries(Object.entries(input.split_dns).map(([d, ns]) => [trim(d), ns])),
    searchDomains: input.search_domains.map(trim),
    extraRecords: input.extra_records.map((r) => ({ name: trim(r.name), type: r.type, value: r.value })),
  };
}

export const settingsRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'getSettings',
    method: 'GET',
    path: '/settings',
    group: 'settings',
    scope: 'tailnet',
    summary: 'The tailnet\'s settings in force: name, default key expiry, device approval, DNS, DERP map',
    response: settingsSchema,
    async handle({ tailnet, deps }) {
      return settingsJson(tailnet, deps.config, deps.serverUrl, deps.derpMap?.());
    },
  }),
  defineRoute({
    operationId: 'updateSettings',
    method: 'PATCH',
    path: '/settings',
    group: 'settings',
    scope: 'tailnet',
    summary: 'Change the tailnet\'s display name, default key expiry, device approval or DNS',
    description:
      'Only the fields given change, in one transaction with one audit entry. `default_key_expiry_seconds` applies to ' +
      'devices registered from now on (null: back to node_expiry of the config). `dns` replaces the tailnet\'s whole ' +
      'DNS (null: back to the config file\'s dns section); connected devices get it at once. Each problem is answered ' +
      'with the field it is in, e.g. `body.dns.nameservers[1]: "8.8.8" is not an IP address or an https:// URL`.',
    body: z.strictObject({
      display_name: z.string().max(100).optional().describe('\'\' goes back to the API name.'),
      default_key_expiry_seconds: z.number().int().min(0).max(MAX_KEY_EXPIRY_SECONDS).nullable().optional()
        .describe('0 = keys never expire; at most 10 years; null = node_expiry of the config.'),
      device_approval: z.boolean().optional(),
      dns: dnsInput.nullable().optional(),
    }),
    response: settingsSchema,
    async handle({ tailnet, deps, body, actor }) {
      await tailnet.updateSettings({
        ...(body.display_name !== undefined ? { displayName: body.display_name.trim() } : {}),
        ...(body.default_key_expiry_seconds !== undefined ? { nodeExpirySeconds: body.default_key_expiry_seconds } : {}),
        ...(body.dns !== undefined ? { dns: body.dns === null ? null : tailnetDnsFrom(body.dns) } : {}),
      }, actor, body.device_approval !== undefined ? { deviceApproval: body.device_approval } : {});
      return settingsJson(tailnet, deps.config, deps.serverUrl, deps.derpMap?.());
    },
  }),
];

function settingsJson(tailnet: TailnetState, config: Config, serverUrl: string, derpMap: unknown): z.output<typeof settingsSchema> {
  const own = tailnet.settings;
  return {
    tailnet: tailnet.name,
    display_name: own.displayName,
    server_url: serverUrl,
    default_key_expiry_seconds: Math.round(tailnet.nodeExpiryMs(config.nodeExpiryMs) / 1000),
    default_key_expiry_source: own.nodeExpirySeconds === null ? 'config' : 'tailnet',
    device_approval: tailnet.deviceApproval,
    dns_source: own.dns === null ? 'config' : 'tailnet',
    ...effectiveDns(tailnet, config),
    derp_regions: derpRegions(derpMap),
  };
}
