// headway import headscale: moves a headscale server in. Runs locally against the store of the
// configuration (--config), not through the admin API, because it also takes over the Noise key
// file in data_dir; stop the server first and start it after.
import { Option } from 'commander';
import type { Cli } from './program.js';

export function registerImportCommands({ program, action }: Cli): void {
  const group = program.command('import').description('move in from another control server (run with the Headway server stopped)');
  group.command('headscale')
    .description("import headscale 0.23-0.29: users, nodes (clients reconnect without logging in), pre-auth keys, policy and Noise key; DNS/DERP settings as a config fragment")
    .addOption(new Option('--database <location>', "headscale's SQLite file or a postgres:// URL (default: database.sqlite.path of --headscale-config)"))
    .addOption(new Option('--noise-key <path>', "headscale's noise_private.key (default: noise.private_key_path of --headscale-config)"))
    .addOption(new Option('--headscale-config <file>', "headscale's config.yaml: DNS, DERP, prefixes, server_url and policy are read from it"))
    .addOption(new Option('--policy <file>', "a policy file to import instead of headscale's"))
    .addOption(new Option('--config-out <file>', 'write the Headway config keys made from --headscale-config to this file (0600)'))
    .addOption(new Option('--dry-run', 'show what would be imported and what cannot be; change nothing'))
    .addOption(new Option('--merge', 'import into a tailnet that already has other users or nodes'))
    .action(action(async (ctx, _args, options) => {
      const [{ loadConfig }, { importHeadscale }] = await Promise.all([import('../config/index.js'), import('../import/index.js')]);
      const config = loadConfig({ path: ctx.globals.config, env: ctx.io.env, cwd: ctx.io.cwd });
      const str = (name: string) => (typeof options[name] === 'string' ? options[name] : undefined);
      const result = await importHeadscale({
        config,
        ...(str('database') !== undefined ? { database: str('database') } : {}),
        ...(str('noiseKey') !== undefined ? { noiseKey: str('noiseKey') } : {}),
        ...(str('headscaleConfig') !== undefined ? { headscaleConfig: str('headscaleConfig') } : {}),
        ...(str('policy') !== undefined ? { policyFile: str('policy') } : {}),
        ...(str('configOut') !== undefined ? { configOut: str('configOut') } : {}),
        tailnet: ctx.globals.tailnet,
        dryRun: options['dryRun'] === true,
        merge: options['merge'] === true,
      });
      ctx.print(result, () => {
        const lines: string[] = [];
        const verb = result.dryRun ? 'would import' : 'imported';
        lines.push(`${result.dryRun ? 'dry run: nothing was changed. ' : ''}headscale ${result.headscaleRelease} schema at ${result.source} -> tailnet "${result.tailnet}"`);
        lines.push(`users: ${verb} ${result.users.created.length}${result.users.created.length > 0 ? ` (${result.users.created.join(', ')})` : ''}, already present ${result.users.alreadyPresent.length}`);
        lines.push(`nodes: ${verb} ${result.nodes.created.length}${result.nodes.created.length > 0 ? ` (${result.nodes.created.join(', ')})` : ''}, already present ${result.nodes.alreadyPresent.length}`);
        for (const renamed of result.nodes.renamed) lines.push(`  renamed ${renamed.from} -> ${renamed.to} (the name was taken)`);
        lines.push(`pre-auth keys: ${verb} ${result.preAuthKeys.carried}, already present ${result.preAuthKeys.alreadyPresent}`);
        lines.push(`policy: ${result.policy}`);
        lines.push(`noise key: ${result.noiseKey}${result.previousNoiseKey !== null ? ` (the previous key is kept at ${result.previousNoiseKey})` : ''}`);
        if (result.notCarried.length > 0) {
          lines.push('not carried:');
          for (const item of result.notCarried) lines.push(`  ${item.what}: ${item.reason}`);
        }
        for (const warning of result.warnings) lines.push(`warning: ${warning}`);
        if (result.configFragment !== '') {
          lines.push(str('configOut') !== undefined && !result.dryRun
            ? `config: the DNS/DERP/prefix settings were written to ${str('configOut')}; merge them into Headway's config.yaml`
            : `config: add these keys to Headway's config.yaml:\n${result.configFragment.trimEnd().split('\n').map((l) => `  ${l}`).join('\n')}`);
        }
        return `${lines.join('\n')}\n`;
      });
    }));
}
