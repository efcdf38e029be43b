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
  /** The data directory (the SQLite database is headway.sqlite in it). */
  readonly dataDir: string;
  /** Every line the server logged so far. */
  log(): string;
  /** Runs the CLI against this server (over its admin socket); returns stdout. */
  cli(args: readonly string[]): Promise<string>;
  alive(): boolean;
  /** SIGKILL: no shutdown, whatever was in flight is cut. */
  kill(): Promise<void>;
  /** Starts the server again on the same data, config and port (after kill or stop). */
  restart(options?: { fileSizeLimitBytes?: number }): Promise<void>;
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
  /** RLIMIT_FSIZE for the server (a full disk without a special mount); SIGXFSZ is ignored. */
  readonly fileSizeLimitBytes?: number;
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
  let child!: ChildProcess;
  let log = '';
  let exited = false;
  let exit!: Promise<void>;
  const spawnServer = async (fileSizeLimitBytes: number | undefined) => {
    const argv = [BIN, 'serve', '--config', configPath];
    // prlimit applies the limit; the shell's trap makes SIGXFSZ ignored across exec, so an
    // oversized write fails with EFBIG instead of killing the process.
    child = fileSizeLimitBytes === undefined
      ? spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('sh', ['-c', `trap '' XFSZ; exec prlimit --fsize=${fileSizeLimitBytes} -- "$@"`, 'sh', process.execPath, ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    exited = false;
    const starting = log.length;
    const current = child;
    exit = new Promise<void>((done) => current.once('exit', () => { exited = true; done(); }));
    const thisExit = exit;
    return new Promise<{ url: string; metricsUrl: string; stunPort: number }>((done, fail) => {
      const onData = (chunk: Buffer): void => {
        log += chunk.toString('utf8');
        const fresh = log.slice(starting);
        const listen = /"listen":"(http:\/\/127\.0\.0\.1:\d+)","server_url":"[^"]*","metrics":"([^"]+)"/.exec(fresh);
        const stun = /"listen":"127\.0\.0\.1:(\d+)","msg":"stun server listening"/.exec(fresh);
        if (listen && stun) done({ url: listen[1]!, metricsUrl: listen[2]!, stunPort: Number(stun[1]) });
      };
      current.stdout!.on('data', onData);
      current.stderr!.on('data', onData);
      void thisExit.then(() => fail(new Error(`headway serve exited before listening:\n${log.slice(starting)}`)));
    });
  };
  const started = await spawnServer(options.fileSizeLimitBytes);
  // A restart must come back on the same port: clients keep their server URL.
  const port = new URL(started.url).port;
  const text = await readFile(configPath, 'utf8');
  await writeFile(configPath, text.replace('listen_addr: 127.0.0.1:0', `listen_addr: 127.0.0.1:${port}\nserver_url: http://127.0.0.1:${port}`));
  const server: ServerProcess = {
    ...started,
    get pid() { return child.pid!; },
    configPath,
    dataDir: join(dir, 'data'),
    log: () => log,
    async cli(args) {
      const { stdout } = await run(process.execPath, [BIN, '--config', configPath, ...args], { env });
      return stdout;
    },
    alive: () => !exited,
    async kill() {
      if (!exited) child.kill('SIGKILL');
      await exit;
    },
    async restart(restartOptions = {}) {
      if (!exited) throw new Error('restart: the server is still running');
      await spawnServer(restartOptions.fileSizeLimitBytes);
    },
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
