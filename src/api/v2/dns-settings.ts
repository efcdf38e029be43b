// DNS and tailnet settings as Tailscale's API reads them: a tailnet's own DNS (set with
// PATCH /api/v1/settings or the console) or else the configuration file's dns section. Writes
// through API v2 answer 501 naming both ways; tailnet settings answer what Headway does today.
import { z } from 'zod';
import { effectiveDns } from '../settings.js';
import { ApiV2Errors } from './errors.js';
import { v2Error } from './handler.js';
import { v2Route, type CompiledV2Route, type V2Context } from './route.js';

function configManaged(key: string): never {
  throw v2Error(ApiV2Errors.notSupported, `Headway does not change DNS through API v2: use PATCH /api/v1/settings (or the web console) for a tailnet's own DNS, or the configuration file (${key}) for every tailnet`);
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
    operationId: 'v2GetNameservers', method: 'GET', path: '/tailnet/{tailnet}/dns/nameservers', summary: 'Global nameservers (the tailnet\'s own, else dns.nameservers.global)', scope: 'dns',
    response: z.object({ dns: z.array(z.string()), magicDNS: z.boolean() }),
    async handle(ctx: V2Context) {
      const dns = effectiveDns(ctx.tailnet(), ctx.config);
      return { dns: dns.nameservers, magicDNS: dns.magic_dns };
    },
  }),
  v2Route({ operationId: 'v2SetNameservers', method: 'POST', path: '/tailnet/{tailnet}/dns/nameservers', summary: 'Not supported: set dns.nameservers.global in the config', scope: 'dns', async handle() { return configManaged('dns.nameservers.global'); } }),
  v2Route({
    operationId: 'v2GetSearchPaths', method: 'GET', path: '/tailnet/{tailnet}/dns/searchpaths', summary: 'Search domains (the tailnet\'s own, else dns.search_domains)', scope: 'dns',
    response: z.object({ searchPaths: z.array(z.string()) }),
    async handle(ctx: V2Context) {
      return { searchPaths: effectiveDns(ctx.tailnet(), ctx.config).search_domains };
    },
  }),
  v2Route({ operationId: 'v2SetSearchPaths', method: 'POST', path: '/tailnet/{tailnet}/dns/searchpaths', summary: 'Not supported: set dns.search_domains in the config', scope: 'dns', async handle() { return configManaged('dns.search_domains'); } }),
  v2Route({
    operationId: 'v2GetSplitDns', method: 'GET', path: '/tailnet/{tailnet}/dns/split-dns', summary: 'Split DNS: domain to nameservers (the tailnet\'s own, else dns.nameservers.split)', scope: 'dns',
    response: z.record(z.string(), z.array(z.string())),
    async handle(ctx: V2Context) {
      return effectiveDns(ctx.tailnet(), ctx.config).split_dns;
    },
  }),
  v2Route({ operationId: 'v2PatchSplitDns', method: 'PATCH', path: '/tailnet/{tailnet}/dns/split-dns', summary: 'Not supported: set dns.nameservers.split in the config', scope: 'dns', async handle() { return configManaged('dns.nameservers.split'); } }),
  v2Route({ operationId: 'v2SetSplitDns', method: 'PUT', path: '/tailnet/{tailnet}/dns/split-dns', summary: 'Not supported: set dns.nameservers.split in the config', scope: 'dns', async handle() { return configManaged('dns.nameservers.split'); } }),
  v2Route({
    operationId: 'v2GetDnsPreferences', method: 'GET', path: '/tailnet/{tailnet}/dns/preferences', summary: 'MagicDNS on or off (the tailnet\'s own, else dns.magic_dns)', scope: 'dns',
    response: z.object({ magicDNS: z.boolean() }),
    async handle(ctx: V2Context) {
      return { magicDNS: effectiveDns(ctx.tailnet(), ctx.config).magic_dns };
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
        devicesKeyDurationDays: Math.round(tailnet.nodeExpiryMs(ctx.config.nodeExpiryMs) / 86_400_000),
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
