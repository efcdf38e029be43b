// A real `headway serve` process for the adversarial tests: its own data directory, every
// listener on 127.0.0.1 port 0, found from its JSON start log. Keys are made with the real CLI
// over the admin socket. Reads the process's resident memory from /proc.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const BIN = resolve(fileURLToPath(import.meta.url), '../../../src/cli/main.js');
const run = promisify(execFile);

export interface ServerProcess {
  readonly url: string;
  readonly metricsUrl: string;
  readonly stunPort: number;
  readonly pid: number;
  readonly configPath: string;
  /** Every line the server logged so far. */
  log(): string;
  /** Runs the CLI against this server (over its admin socket); returns stdout. */
  cli(args: readonly string[]): Promise<string>;
  alive(): boolean;
  /** Resident memory in bytes. */
  rss(): Promise<number>;
  /** GET /health answers 200 within `timeoutMs`. */
  healthy(timeoutMs?: number): Promise<boolean>;
  stop(): Promise<void>;
}

export interface ServerProcessOptions {
  /** Extra YAML lines for the config file. */
  readonly extraConfig?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

export async function startServerProcess(options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'headway-proc-'));
  const configPath = join(dir, 'config.yaml');
  await writeFile(configPath, [
    'listen_addr: 127.0.0.1:0',
    'metrics_listen_addr: 127.0.0.1:0',
    `data_dir: ${JSON.stringify(join(dir, 'data'))}`,
    'log: { level: info, format: json }',
    'derp: { server: { stun_listen_addr: "127.0.0.1:0" } }',
    ...(options.extraConfig ?? []),
    '',
  ].join('\n'));
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, ...options.env };
  const child: ChildProcess = spawn(process.execPath, [BIN, 'serve', '--config', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let exited = false;
  const exit = new Promise<void>((done) => child.once('exit', () => { exited = true; done(); }));
  const started = await new Promise<{ url: string; metricsUrl: string; stunPort: number }>((done, fail) => {
    const onData = (chunk: Buffer): void => {
      log += chunk.toString('utf8');
      const listen = /"listen":"(http:\/\/127\.0\.0\.1:\d+)","server_url":"[^"]*","metrics":"([^"]+)"/.exec(log);
      const stun = /"listen":"127\.0\.0\.1:(\d+)","msg":"stun server listening"/.exec(log);
      if (listen && stun) done({ url: listen[1]!, metricsUrl: listen[2]!, stunPort: Number(stun[1]) });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exit.then(() => fail(new Error(`headway serve exited before listening:\n${log}`)));
  });
  const server: ServerProcess = {
    ...started,
    pid: child.pid!,
    configPath,
    log: () => log,
    async cli(args) {
      const { stdout } = await run(process.execPath, [BIN, '--config', configPath, ...args], { env });
      return stdout;
    },
    alive: () => !exited,
    async rss() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
      return kb ? Number(kb[1]) * 1024 : 0;
    },
    async healthy(timeoutMs = 5_000) {
      try {
        const res = await fetch(`${started.url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
        await res.text();
        return res.status === 200;
      } catch {
        return false;
      }
    },
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exit;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
