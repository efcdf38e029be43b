import { registerErrors } from '../util/headway-error.js';

export const ServerErrors = registerErrors({
  NO_PIPELINE: {
    code: 'HW_SERVER_NO_PIPELINE', status: 500,
    meaning: 'A request named a tailnet whose pipeline is not running (it was deleted a moment ago).',
    fix: 'Retry; if it persists, restart the server and report it.',
  },
  SOCKET_PATH: {
    code: 'HW_SERVER_SOCKET_PATH', status: 500,
    meaning: 'The admin socket path is taken: another server runs on this data directory, or a non-socket file is in the way.',
    fix: 'Stop the other server, or set unix_socket to another path.',
  },
  POLICY_FILE: {
    code: 'HW_SERVER_POLICY_FILE', status: 500,
    meaning: 'The policy file (policy.mode: file) could not be read or is invalid at start.',
    fix: 'Fix the file (the message names the line and column) or switch policy.mode to database.',
  },
});
