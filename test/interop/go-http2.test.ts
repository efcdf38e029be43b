// Our HTTP/2 server connection (src/control/h2/) against Go's own HTTP/2 client: the
// golang.org/x/net/http2 transport that Tailscale's control client is built on, here from
// Debian's packages (golang-go, golang-golang-x-net-dev; .ci/run installs them). The Go program
// in go-http2-client/ runs concurrent requests, a response past Go's stream window, a cancelled
// long poll, idle health-check PINGs and an over-limit body; the server side is checked here.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPlainH2Server, type PlainH2Server } from '../../src/control/h2/testing.js';
import type { ServerStream } from '../../src/control/h2/server-stream.js';

const here = fileURLToPath(new URL('.', import.meta.url));
// Compiled to dist/test/interop/: the Go source stays in the repository's test/interop/.
const CLIENT_SOURCE = resolve(here, '..', '..', '..', 'test', 'interop', 'go-http2-client');
const GO_PATH = '/usr/share/gocode';
const GO = spawnSync('sh', ['-c', 'command -v go'], { encoding: 'utf8' }).stdout.trim();
const X_NET = join(GO_PATH, 'src', 'golang.org', 'x', 'net', 'http2');
const SKIP = GO === ''
  ? 'Go is not installed (.ci/run installs it; apt-get install -y golang-go golang-golang-x-net-dev)'
  : !existsSync(X_NET)
    ? `golang.org/x/net is not at ${X_NET} (apt-get install -y golang-golang-x-net-dev)`
    : false;

function serve(stream: ServerStream, cancelled: { count: number }): void {
  switch (stream.url) {
    case '/echo':
      stream.readBody(1 << 20).then(
        (body) => {
          const echoed = stream.headers['x-request'];
          stream.writeHead(200, echoed === undefined ? {} : { 'x-request': echoed });
          stream.end(body);
        },
        () => {
          if (!stream.closed) stream.writeHead(413).end('body too large\n');
        },
      );
      return;
    case '/big': {
      stream.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < 5 << 20) {
          sent += chunk.length;
          if (!stream.write(chunk)) {
            stream.once('drain', pump);
            return;
          }
        }
        stream.end();
      };
      pump();
      return;
    }
    case '/stream': {
      stream.writeHead(200);
      const timer = setInterval(() => stream.write(Buffer.alloc(1000, 0x62)), 5);
      stream.once('close', () => {
        clearInterval(timer);
        if (stream.destroyed) cancelled.count++;
      });
      return;
    }
    default:
      stream.writeHead(404).end();
  }
}

describe("our HTTP/2 server against Go's x/net/http2 client", { skip: SKIP }, () => {
  let dir = '';
  let server: PlainH2Server | null = null;
  const cancelled = { count: 0 };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'headway-go-h2-'));
    server = await startPlainH2Server((stream) => serve(stream, cancelled), { maxConcurrentStreams: 250 });
  });

  after(async () => {
    await server?.close();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('serves every step the Go client takes, on one connection, with no protocol error', { timeout: 180_000 }, async () => {
    const binary = join(dir, 'go-http2-client');
    // GOPATH mode: Debian's golang.org/x/net sources, no module download.
    const env = { ...process.env, GO111MODULE: 'off', GOPATH: `${GO_PATH}:${join(dir, 'gopath')}`, GOCACHE: join(dir, 'cache'), GOFLAGS: '' };
    const build = spawnSync(GO, ['build', '-o', binary, '.'], { cwd: CLIENT_SOURCE, env, encoding: 'utf8', timeout: 150_000 });
    assert.equal(build.status, 0, `go build failed: ${build.stderr}`);
    const output = await new Promise<string>((resolvePromise, reject) => {
      execFile(binary, [String(server!.port)], { timeout: 60_000 }, (err, stdout) => (err === null ? resolvePromise(stdout) : reject(new Error(`${err.message}\n${stdout}`))));
    });
    const steps = output.trim().split('\n');
    assert.deepEqual(steps, ['ok concurrent echoes', 'ok large response', 'ok cancelled long poll', 'ok request after idle pings', 'ok body over the limit']);
    assert.deepEqual(server!.errors.map(String), [], 'the client made no protocol error');
    assert.equal(server!.connections.length, 1, 'every request rode one connection (the PINGs were answered)');
    assert.equal(cancelled.count, 1, 'the cancelled long poll was closed as cancelled');
  });
});
