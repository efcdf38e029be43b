/**
 * @module cli
 * Owns the `headway` command line (commander 14): `serve`, and the admin commands, which are a
 * thin client of the admin API over the unix socket (no key) or over HTTP(S) with an API key.
 * Prints the API's own JSON objects with `--output json`, aligned tables otherwise.
 * May import: server, config, policy, client, api (types and shared parsing), util, log.
 * Must never: decide anything the server decides (validation beyond argument syntax, business
 * rules), or print a secret other than a key the user just created. This file is the door;
 * main.ts is the bin.
 */
export { runCli, buildCli } from './run.js';
export { AdminClient, type ClientTarget, type CallOptions } from './client.js';
export { CliErrors, ServerError } from './errors.js';
export type { CliIo } from './output.js';
