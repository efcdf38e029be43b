// `npm run fuzz -- --minutes N [--seed S] [--only TEXT]`: every fuzz target, the parsers in
// process and the sockets of one real server process, sharing N minutes equally. A failure
// prints fast-check's seed and shrunk input and exits 1; rerun it with --seed.
import { parseArgs } from 'node:util';
import { PARSER_TARGETS } from './parsers.js';
import { SERVER_TARGETS } from './server-targets.js';
import { startServerProcess } from '../support/server-process.js';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '5' }, seed: { type: 'string' }, only: { type: 'string' } } });
  const minutes = Number(values.minutes);
  if (!Number.isFinite(minutes) || minutes <= 0) {
    process.stderr.write(`--minutes: want a positive number, got ${JSON.stringify(values.minutes)}\n`);
    return 2;
  }
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  const pick = <T extends { name: string }>(targets: readonly T[]) => targets.filter((t) => values.only === undefined || t.name.includes(values.only));
  const parsers = pick(PARSER_TARGETS);
  const sockets = pick(SERVER_TARGETS);
  const count = parsers.length + sockets.length;
  if (count === 0) {
    process.stderr.write(`--only ${values.only}: no target matches\n`);
    return 2;
  }
  const slice = Math.floor((minutes * 60_000) / count);
  const budget = { timeLimitMs: slice, ...(seed !== undefined ? { seed } : {}) };
  process.stdout.write(`fuzzing ${count} targets for ${minutes} min (${Math.round(slice / 1000)} s each)\n`);
  let failures = 0;
  const attempt = async (name: string, run: () => Promise<void>) => {
    const start = Date.now();
    try {
      await run();
      process.stdout.write(`ok    ${name} (${Math.round((Date.now() - start) / 1000)} s)\n`);
    } catch (err) {
      failures++;
      process.stdout.write(`FAIL  ${name}\n${err instanceof Error ? err.message : String(err)}\n`);
    }
  };
  for (const target of parsers) await attempt(target.name, () => target.run(budget));
  if (sockets.length > 0) {
    const server = await startServerProcess();
    try {
      await server.cli(['users', 'create', 'alice']);
      const apiKey = (await server.cli(['apikeys', 'create'])).trim();
      for (const target of sockets) {
        await attempt(target.name, async () => {
          await target.run({ server, apiKey }, budget);
          if (!(await server.healthy())) throw new Error('the server stopped answering /health');
        });
      }
      process.stdout.write(`server resident memory at the end: ${Math.round((await server.rss()) / 2 ** 20)} MB\n`);
    } finally {
      await server.stop();
    }
  }
  process.stdout.write(failures === 0 ? 'no findings\n' : `${failures} target(s) failed\n`);
  return failures === 0 ? 0 : 1;
}

// `node --test dist/` runs every file under a test/ directory, this one too: there it does
// nothing (the bounded fuzz runs are parsers.test.ts and server.test.ts).
if (process.env['NODE_TEST_CONTEXT'] === undefined) process.exitCode = await main();
