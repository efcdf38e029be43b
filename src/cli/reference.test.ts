// The CLI describes itself: every command has an example, and docs/cli.md holds the reference
// rendered from the command tree.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { EXAMPLES } from './examples.js';
import { CLI_REFERENCE_BEGIN, CLI_REFERENCE_END, commandPath, leafCommands, renderCliReference } from './reference.js';
import { buildCli } from './run.js';

const DOCS = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'cli.md');

function program() {
  const io = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough(), env: {}, cwd: '/' };
  return buildCli(io, { exitCode: 0 }).program;
}

describe('CLI reference', () => {
  it('has the commands of issue 2, each with an example', () => {
    const paths = leafCommands(program()).map(commandPath);
    for (const wanted of [
      'serve', 'tailnets create', 'tailnets list', 'tailnets delete', 'users create', 'users list', 'users rename', 'users delete',
      'nodes list', 'nodes show', 'nodes rename', 'nodes tag', 'nodes expire', 'nodes delete', 'nodes move', 'nodes register',
      'nodes routes list', 'nodes routes approve', 'preauthkeys create', 'preauthkeys list', 'preauthkeys expire',
      'apikeys create', 'apikeys list', 'apikeys expire', 'policy get', 'policy set', 'policy check',
    ]) {
      assert.ok(paths.includes(wanted), `headway ${wanted}`);
    }
    assert.deepEqual(paths.filter((p) => EXAMPLES[p] === undefined), [], 'commands without an example');
    assert.deepEqual(Object.keys(EXAMPLES).filter((p) => !paths.includes(p)), [], 'examples of commands that do not exist');
  });

  it('is current in docs/cli.md (HEADWAY_WRITE_DOCS=1 rewrites it)', () => {
    const text = readFileSync(DOCS, 'utf8');
    const start = text.indexOf(CLI_REFERENCE_BEGIN);
    const end = text.indexOf(CLI_REFERENCE_END);
    assert.ok(start >= 0 && end > start, 'docs/cli.md lacks the generated section markers');
    const current = text.slice(start, end + CLI_REFERENCE_END.length);
    const wanted = renderCliReference(program());
    if (current !== wanted && process.env['HEADWAY_WRITE_DOCS'] === '1') {
      writeFileSync(DOCS, text.slice(0, start) + wanted + text.slice(end + CLI_REFERENCE_END.length));
      return;
    }
    assert.equal(current, wanted, 'docs/cli.md is stale: run `npx tsc -p . && HEADWAY_WRITE_DOCS=1 node --test dist/src/cli/reference.test.js`');
  });
});
