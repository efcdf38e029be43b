// headway serve: starts the server in this process.
import type { Cli } from './program.js';
import { HeadwayError } from '../util/headway-error.js';
import { CliErrors } from './errors.js';

export function registerServeCommand({ program, action }: Cli): void {
  program.command('serve')
    .description('run the Headway server (config from --config or HEADWAY_CONFIG; built-in defaults otherwise)')
    .action(action(async () => {
      // TODO(#2): call startServer from src/server once the composition root is merged.
      throw new HeadwayError(CliErrors.unreachable, 'serve: the server is not wired into this build yet');
    }));
}
