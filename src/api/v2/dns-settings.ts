// DNS and tailnet settings as Tailscale's API reads them. Headway's DNS settings live in its
// configuration file (dns.*), the same for every tailnet, so these endpoints read them and answer
// writes with 501 naming the config key; tailnet settings answer what Headway does today.
import { z } from 'zod';
import { ApiV2Errors } from './errors.js';
import { v2Error } from './handler.js';
import { v2Route, type CompiledV2Route, type V2Context } from './route.js';

function configManaged(key: string): never {
  throw v2Error(ApiV2Errors.notSupported, `Headway's DNS settings are set in its configuration file (${key}) and apply to every tailnet; edit it and restart`);
}

const settingsSchema = z.object({
  devicesApprovalOn: z.boolean(),
  devicesAutoUpdatesOn: z.boolean(),
  devicesKeyDurationDays: z.number().int(),
  usersApprovalOn: z.boolean(),
  usersRoleAllowedToJoinExternalTailnets: z.string(),
  networkFlowLoggingOn: z.boolean(),
  regionalRoutingOn: z.boolean(),
  postureIdentityCollectionOn: z.boolean(),
}).meta({ id: 'V2TailnetSettings' });

export const dnsSettingsRoutes: readonly CompiledV2Route[] = [
  v2Route({
    operationId: 'v2GetNameservers', method: 'GET', path: '/tailnet/{tailnet}/dns/nameservers', summary: 'Global nameservers (from dns.nameservers.global)', scope: 'dns',
    response: z.object({ dns: z.array(z.string()), magicDNS: z.boolean() }),
    async handle(ctx: V2Context) {
      ctx.tailnet();
      return { dns: [...ctx.config.dns.nameserversGlobal], magicDNS: ctx.config.dns.magicDns };
    },
  }),
  v2Route({ operationId: 'v2SetNameservers', method: 'POST', path: '/tailnet/{tailnet}/dns/nameservers', summary: 'Not supported: set dns.nameservers.global in the config', scope: 'dns', async handle() { return configManaged('dns.nameservers.global'); } }),
  v2Route({
    operationId: 'v2GetSearchPaths', method: 'GET', path: '/tailnet/{tailnet}/dns/searchpaths', summary: 'Search domains (from dns.search_domains)', scope: 'dns',
    response: z.object({ searchPaths: z.array(z.string()) }),
    async handle(ctx: V2Context) {
      ctx.tailnet();
      return { searchPaths: [...ctx.config.dns.searchDomains] };
    },
  }),
  v2Route({ operationId: 'v2SetSearchPaths', method: 'POST', path: '/tailnet/{tailnet}/dns/searchpaths', summary: 'Not supported: set dns.search_domains in the config', scope: 'dns', async handle() { return configManaged('dns.search_domains'); } }),
  v2Route({
    operationId: 'v2GetSplitDns', method: 'GET', path: '/tailnet/{tailnet}/dns/split-dns', summary: 'Split DNS: domain to nameservers (from dns.nameservers.split)', scope: 'dns',
    response: z.record(z.string(), z.array(z.string())),
    async handle(ctx: V2Context) {
      ctx.tailnet();
      return Object.fromEntries(Object.entries(ctx.config.dns.nameserversSplit).map(([domain, servers]) => [domain, [...servers]]));
    },
  }),
  v2Route({ operationId: 'v2PatchSplitDns', method: 'PATCH', path: '/tailnet/{tailnet}/dns/split-dns', summary: 'Not supported: set dns.nameservers.split in the config', scope: 'dns', async handle() { return configManaged('dns.nameservers.split'); } }),
  v2Route({ operationId: 'v2SetSplitDns', method: 'PUT', path: '/tailnet/{tailnet}/dns/split-dns', summary: 'Not supported: set dns.nameservers.split in the config', scope: 'dns', async handle() { return configManaged('dns.nameservers.split'); } }),
  v2Route({
    operationId: 'v2GetDnsPreferences', method: 'GET', path: '/tailnet/{tailnet}/dns/preferences', summary: 'MagicDNS on or off (from dns.magic_dns)', scope: 'dns',
    response: z.object({ magicDNS: z.boolean() }),
    async handle(ctx: V2Context) {
      ctx.tailnet();
      return { magicDNS: ctx.config.dns.magicDns };
    },
  }),
  v2Route({ operationId: 'v2SetDnsPreferences', method: 'POST', path: '/tailnet/{tailnet}/dns/preferences', summary: 'Not supported: set dns.magic_dns in the config', scope: 'dns', async handle() { return configManaged('dns.magic_dns'); } }),
  v2Route({
    operationId: 'v2GetTailnetSettings', method: 'GET', path: '/tailnet/{tailnet}/settings', summary: 'Tailnet settings as Headway applies them', scope: 'feature_settings', response: settingsSchema,
    async handle(ctx: V2Context) {
      const tailnet = ctx.tailnet();
      // Device approval and auto-update are the tailnet's own settings; the rest is server-wide.
      return {
        devicesApprovalOn: tailnet.deviceApproval,
        devicesAutoUpdatesOn: tailnet.settings.autoUpdate,
        devicesKeyDurationDays: Math.round(ctx.config.nodeExpiryMs / 86_400_000),
        usersApprovalOn: false,
        usersRoleAllowedToJoinExternalTailnets: 'none',
        networkFlowLoggingOn: false,
        regionalRoutingOn: false,
        postureIdentityCollectionOn: false,
      };
    },
  }),
  v2Route({
    operationId: 'v2PatchTailnetSettings', method: 'PATCH', path: '/tailnet/{tailnet}/settings', summary: 'Change device approval and auto-update; the other settings are server-wide', scope: 'feature_settings',
    body: settingsSchema.partial(),
    async handle(ctx: V2Context) {
      const tailnet = ctx.tailnet();
      const body = ctx.body as Partial<z.output<typeof settingsSchema>>;
      const serverWide = Object.keys(body).filter((key) => key !== 'devicesApprovalOn' && key !== 'devicesAutoUpdatesOn');
      if (serverWide.length > 0) {
        throw v2Error(ApiV2Errors.notSupported, `${serverWide.join(', ')}: server-wide in Headway (its configuration file); only devicesApprovalOn and devicesAutoUpdatesOn change per tailnet`);
      }
      if (body.devicesAutoUpdatesOn !== undefined) await tailnet.updateSettings({ autoUpdate: body.devicesAutoUpdatesOn }, ctx.principal.actor);
      if (body.devicesApprovalOn !== undefined && body.devicesApprovalOn !== tailnet.deviceApproval) await tailnet.setDeviceApproval(body.devicesApprovalOn, ctx.principal.actor);
      return {};
    },
  }),
];
