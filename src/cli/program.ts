// The `headway` command tree (commander 14) and the glue every command shares: the global
// options, finding the server (unix socket from the config, or --server with --api-key), printing
// JSON or tables, and turning failures into one `error: ...` line and an exit status.
//   0  success
//   1  the server refused or failed, or could not be reached
//   2  a bad argument or option (nothing was sent), or a request the server found invalid
import { Command, CommanderError, Option } from 'commander';
import { HeadwayError } from '../util/headway-error.js';
import { AdminClient, type CallOptions, type ClientTarget } from './client.js';
import { CliErrors, ServerError, usageError } from './errors.js';
import { renderJson, type CliIo, type OutputFormat } from './output.js';

export interface GlobalOptions {
  config?: string;
  tailnet: string;
  output: OutputFormat;
  server?: string;
  apiKey?: string;
}

/** What a command's action gets: its options, the client, and the printer. */
export interface CommandContext {
  readonly io: CliIo;
  readonly globals: GlobalOptions;
  /** True when --tailnet was given (on the command line or in the environment). */
  readonly tailnetGiven: boolean;
  /** Calls the admin API; the client is created on first use, so argument errors come first. */
  call<T>(method: string, path: string, options?: CallOptions): Promise<T>;
  /** Prints `value` as JSON with --output json, else what `human()` returns. */
  print(value: unknown, human: () => string): void;
  /** Maps request body fields to the options that fill them, for server validation errors. */
  fields(map: Record<string, string>): void;
  /** Ends with this exit status after the action (a check that found problems). */
  exit(code: number): void;
}

export type CommandAction = (ctx: CommandContext, args: string[], options: Record<string, unknown>) => Promise<void>;

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface Cli {
  readonly program: Command;
  /** Wraps an action with option resolution, printing and error handling. */
  action(fn: CommandAction): (...args: unknown[]) => Promise<void>;
}

export function createCli(io: CliIo, state: { exitCode: number }): Cli {
  const program = new Command('headway')
    .description('Headway: a self-hosted Tailscale control server.\nCommands other than `serve` talk to a running server through its admin API.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .addOption(new Option('-c, --config <file>', 'configuration file (finds the admin socket)').env('HEADWAY_CONFIG'))
    .addOption(new Option('-t, --tailnet <name>', 'tailnet to act on').default('default'))
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .addOption(new Option('--server <url>', 'talk to the server at this URL over HTTP(S) instead of the unix socket').env('HEADWAY_SERVER'))
    .addOption(new Option('--api-key <key>', 'API key for --server').env('HEADWAY_API_KEY'));

  function action(fn: CommandAction): (...args: unknown[]) => Promise<void> {
    return async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const options = args[args.length - 2] as Record<string, unknown>;
      const positional = args.slice(0, -2).map((a) => (a === undefined ? '' : String(a)));
      const globals = command.optsWithGlobals<GlobalOptions & Record<string, unknown>>();
      let fieldMap: Record<string, string> = {};
      let client: AdminClient | undefined;
      const ctx: CommandContext = {
        io,
        globals,
        tailnetGiven: ['cli', 'env'].includes(command.getOptionValueSourceWithGlobals('tailnet') ?? ''),
        async call<T>(method: string, path: string, options?: CallOptions): Promise<T> {
          client ??= new AdminClient(await resolveTarget(globals, io));
          return client.call<T>(method, path, options);
        },
        print(value, human) {
          io.stdout.write(globals.output === 'json' ? renderJson(value) : human());
        },
        fields(map) {
          fieldMap = map;
        },
        exit(code) {
          state.exitCode = code;
        },
      };
      try {
        await fn(ctx, positional, options);
      } catch (err) {
        state.exitCode = reportError(err, io, fieldMap);
      }
    };
  }

  return { program, action };
}

export const VERSION = '0.1.0';

/** Where the server is: --server with an API key, else the unix socket of the config. */
export async function resolveTarget(globals: GlobalOptions, io: CliIo): Promise<ClientTarget> {
  if (globals.server !== undefined && globals.server !== '') {
    let url: URL;
    try {
      url = new URL(globals.server);
    } catch {
      throw usageError(`--server: ${JSON.stringify(globals.server)} is not a URL (want e.g. https://vpn.example.com)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usageError(`--server: want an http:// or https:// URL, got ${JSON.stringify(globals.server)}`);
    if (globals.apiKey === undefined || globals.apiKey === '') {
      throw usageError('--server needs an API key: give --api-key or set HEADWAY_API_KEY (create one with `headway apikeys create` on the server)');
    }
    return { kind: 'tcp', url, apiKey: globals.apiKey };
  }
  // Loaded only here: YAML and schema validation are most of the CLI's start-up time.
  const { loadConfig } = await import('../config/index.js');
  const config = loadConfig({ path: globals.config, env: io.env, cwd: io.cwd });
  return { kind: 'unix', socketPath: config.unixSocket };
}

/** Prints one `error: ...` line (or several for a config) and returns the exit status. */
function reportError(err: unknown, io: CliIo, fieldMap: Record<string, string>): number {
  if (err instanceof ServerError) {
    if (err.field !== undefined) {
      // The server named a field: say which option or argument it came from.
      const code = err.code === 'HW_API_INVALID_REQUEST' ? '' : ` (${err.code})`;
      io.stderr.write(`error: ${optionNames(err.message, fieldMap)}${code}\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`error: ${err.message} (${err.code})\n`);
    return EXIT_FAILED;
  }
  if (err instanceof HeadwayError) {
    io.stderr.write(`error: ${err.message}${err.code === CliErrors.usage.code ? '' : ` (${err.code})`}\n`);
    return err.code === CliErrors.usage.code ? EXIT_USAGE : EXIT_FAILED;
  }
  if (err instanceof CommanderError) throw err;
  io.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT_FAILED;
}

/** `body.tags[1]: "web" is not a tag` -> `--tags: "web" is not a tag` for the options the command maps. */
export function optionNames(message: string, fieldMap: Record<string, string>): string {
  return message.replace(/\b(body|query)(?:\.([a-z_]+)(?:\[\d+\])*)?(?=:)/g, (whole, root: string, name: string | undefined) =>
    fieldMap[name === undefined ? root : `${root}.${name}`] ?? whole);
}

/** `a,b, c` -> ['a', 'b', 'c']; '' -> []. */
export function commaList(text: string | undefined): string[] {
  if (text === undefined) return [];
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Turns commander's own failures (unknown option, missing argument) into an exit status. */
export function exitCodeOfCommanderError(err: CommanderError): number {
  // --help and --version exit 0; a missing subcommand shows help with exitCode 1: a usage error.
  return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
}
