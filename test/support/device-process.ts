// A device in its own process, so a test can kill it the way a router dies (SIGKILL: the
// kernel closes its connections, nothing is said to the server). Run as
//   node device-process.js <serverUrl> <authKey> <hostname> [route,route...]
// It logs in, opens its map stream, prints "ready" and then waits to be killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NodeClient } from '../../src/client/index.js';

export interface DeviceProcess {
  readonly child: ChildProcess;
  kill(): Promise<void>;
}

export async function startDeviceProcess(serverUrl: string, authKey: string, hostname: string, routes: readonly string[] = []): Promise<DeviceProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), serverUrl, authKey, hostname, routes.join(',')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes('ready\n')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`device ${hostname} exited before it was ready:\n${output}`)));
  });
  return {
    child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

async function runDevice(): Promise<void> {
  const [serverUrl, authKey, hostname, routes] = process.argv.slice(2);
  const client = new NodeClient({
    serverUrl: serverUrl!,
    hostname: hostname!,
    ...(routes ? { hostinfo: { RoutableIPs: routes.split(',') } } : {}),
  });
  await client.loginWithAuthKey(authKey!);
  await client.startMap();
  await client.waitFor('a netmap', (nm) => nm.self !== null, 10_000);
  process.stdout.write('ready\n');
  setInterval(() => {}, 1 << 30);
}

// `node --test dist/` also runs every file under a test/ directory: without arguments this
// file is being imported or run as such, and does nothing.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.length >= 5) {
  runDevice().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
