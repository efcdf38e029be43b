// headway debug: logs in as a node with our own protocol client (TS2021, HTTP/2, the zstd map
// stream) and prints the netmap the server sends it, as a real device would receive it. A quick
// way to see what a policy gives one device, or to check a server from the outside.
import { NodeClient, type Netmap } from '../client/index.js';
import { CURRENT_CAPVER } from '../tailcfg/index.js';
import { usageError } from './errors.js';
import type { Cli } from './program.js';

export function registerDebugCommand({ program, action }: Cli): void {
  program.command('debug')
    .description('log in as a node with a pre-auth key and print the netmap the server sends it')
    .requiredOption('--authkey <key>', 'pre-auth key to log in with')
    .option('--login-server <url>', 'server URL as clients use it (default: server_url of the config)')
    .option('--hostname <name>', 'hostname the node reports', 'headway-debug')
    .option('--capver <n>', 'capability version to speak (51 = Tailscale 1.34, 109 = 1.78)', String(CURRENT_CAPVER))
    .option('--ephemeral', 'register as an ephemeral node (removed after it goes offline)')
    .option('--follow', 'keep the map stream open and print every later message')
    .option('--timeout <seconds>', 'give up waiting for the first netmap after this long', '15')
    .action(action(async (ctx, _args, options) => {
      const capVersion = Number(options.capver);
      if (!Number.isInteger(capVersion) || capVersion < 1) throw usageError(`--capver: ${JSON.stringify(options.capver)} is not a capability version`);
      const timeoutMs = Number(options.timeout) * 1000;
      if (!(timeoutMs > 0)) throw usageError(`--timeout: ${JSON.stringify(options.timeout)} is not a positive number of seconds`);
      let serverUrl = options.loginServer as string | undefined;
      if (serverUrl === undefined) {
        const { loadConfig } = await import('../config/index.js');
        serverUrl = loadConfig({ path: ctx.globals.config, env: ctx.io.env, cwd: ctx.io.cwd }).serverUrl;
      }
      const node = new NodeClient({ serverUrl, hostname: String(options.hostname), capVersion });
      try {
        await node.loginWithAuthKey(String(options.authkey), options.ephemeral === true ? { ephemeral: true } : {});
        await node.startMap();
        await node.waitFor('the first netmap', (nm) => nm.self !== null, timeoutMs);
        ctx.io.stdout.write(`${JSON.stringify(summary(node.netmap), null, 2)}\n`);
        if (options.follow !== true) return;
        let printed = node.received.length;
        for (;;) {
          await node.waitFor('the next message', () => node.received.length > printed || node.streamEnded, 3_600_000);
          while (printed < node.received.length) ctx.io.stdout.write(`${JSON.stringify(node.received[printed++])}\n`);
          if (node.streamEnded) return;
        }
      } finally {
        await node.close();
      }
    }));
}

function summary(netmap: Netmap): Record<string, unknown> {
  return {
    self: netmap.self,
    peers: [...netmap.peers.values()].sort((a, b) => a.ID - b.ID),
    packetFilter: netmap.packetFilter,
    sshPolicy: netmap.sshPolicy,
    dnsConfig: netmap.dnsConfig,
    domain: netmap.domain,
    derpMap: netmap.derpMap,
    userProfiles: [...netmap.userProfiles.values()],
  };
}
