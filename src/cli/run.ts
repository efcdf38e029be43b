// Runs one `headway` invocation: builds the command tree, parses, and returns the exit status.
// Everything is written through `io`, so the same code runs as the bin and in-process.
// Subcommands inherit output routing, exitOverride and help-after-error from the program
// (commander copies them when `.command()` creates a subcommand).
import { CommanderError } from 'commander';
import { registerAuditCommands } from './audit.js';
import { registerDebugCommand } from './debug.js';
import { registerImportCommands } from './import.js';
import { registerWebhookCommands } from './webhooks.js';
import { EXAMPLES } from './examples.js';
import { registerKeyCommands } from './keys.js';
import { registerAdminCommands } from './admin.js';
import { registerNodeCommands } from './nodes.js';
import type { CliIo } from './output.js';
import { registerPolicyCommands } from './policy.js';
import { commandPath, leafCommands } from './reference.js';
import { createCli, exitCodeOfCommanderError, EXIT_USAGE, type Cli } from './program.js';
import { registerServeCommand } from './serve.js';
import { registerTailnetCommands } from './tailnets.js';
import { registerUserCommands } from './users.js';

export function buildCli(io: CliIo, state: { exitCode: number }): Cli {
  const cli = createCli(io, state);
  registerServeCommand(cli);
  registerTailnetCommands(cli);
  registerUserCommands(cli);
  registerNodeCommands(cli);
  registerKeyCommands(cli);
  registerAdminCommands(cli);
  registerPolicyCommands(cli);
  registerAuditCommands(cli);
  registerDebugCommand(cli);
  registerWebhookCommands(cli);
  registerImportCommands(cli);
  for (const command of leafCommands(cli.program)) {
    const examples = EXAMPLES[commandPath(command)];
    if (examples !== undefined) command.addHelpText('after', `\n${examples.length === 1 ? 'Example' : 'Examples'}:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
  }
  return cli;
}

/** Runs `headway <argv...>` and returns the exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const state = { exitCode: 0 };
  const { program } = buildCli(io, state);
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return exitCodeOfCommanderError(err);
    io.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_USAGE;
  }
  return state.exitCode;
}
