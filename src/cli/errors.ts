// Errors of the command line itself. A server's error arrives as ServerError with the server's
// own code; these cover what goes wrong before or around the request.
import { HeadwayError, registerErrors } from '../util/headway-error.js';

export const CliErrors = registerErrors({
  usage: {
    code: 'HW_CLI_USAGE',
    status: 400,
    meaning: 'A command-line argument or option is missing or malformed; the message names it.',
    fix: 'Correct the argument; `headway <command> --help` lists what each command takes.',
  },
  unreachable: {
    code: 'HW_CLI_UNREACHABLE',
    status: 503,
    meaning: 'The CLI could not reach the server on its unix socket or at the --server URL.',
    fix: 'Start `headway serve`, point --config (or HEADWAY_CONFIG) at the config the server runs with, or give --server and --api-key.',
  },
  badResponse: {
    code: 'HW_CLI_BAD_RESPONSE',
    status: 502,
    meaning: 'Something answered, but not with the Headway admin API (wrong URL or port, or a proxy error).',
    fix: 'Check the --server URL: it is the server_url of a Headway server, without /api/v1.',
  },
});

/** A bad argument; printed as `error: <message>` with exit status 2. */
export function usageError(message: string): HeadwayError {
  return new HeadwayError(CliErrors.usage, message);
}

/** An error the server answered with: its code, message and status pass through unchanged. */
export class ServerError extends Error {
  override name = 'ServerError';
  readonly code: string;
  readonly status: number;
  /** For validation errors: `body.expiration`, `query.user`, ... */
  readonly field: string | undefined;

  constructor(status: number, code: string, message: string, field: string | undefined) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}
