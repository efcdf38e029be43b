// The socket fuzz targets against one real `headway serve` process, a bounded number of cases
// each: the process must survive every input, keep answering /health, and stay within a memory
// bound (no input may make it allocate without limit). `npm run fuzz -- --minutes N` runs longer.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { SERVER_TARGETS } from './server-targets.js';

/** Generous: a fresh server holds about 100 MB; the inputs here are a few hundred KB in all. */
const RSS_BOUND_BYTES = 400 << 20;

describe('fuzzing a running server over its sockets', () => {
  let server: ServerProcess;
  let apiKey: string;
  before(async () => {
    server = await startServerProcess();
    await server.cli(['users', 'create', 'alice']);
    apiKey = (await server.cli(['apikeys', 'create'])).trim();
  });
  after(async () => { await server.stop(); });

  for (const target of SERVER_TARGETS) {
    it(`${target.name}: the server survives and keeps answering`, async () => {
      await target.run({ server, apiKey }, { numRuns: target.testRuns });
      assert.ok(server.alive(), 'the server process is alive');
      assert.ok(await server.healthy(), 'GET /health answers 200');
      const rss = await server.rss();
      assert.ok(rss < RSS_BOUND_BYTES, `resident memory ${Math.round(rss / 2 ** 20)} MB stays under ${RSS_BOUND_BYTES / 2 ** 20} MB`);
    });
  }
});
