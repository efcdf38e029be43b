#!/usr/bin/env node
// The `headway` executable (package.json "bin"). All logic lives in run.ts.
import { runCli } from './run.js';

const exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
});
process.exitCode = exitCode;
