// Errors of loading the configuration. One error carries every problem found, so a user fixes a
// file in one pass instead of one restart per mistake.
import { HeadwayError, registerErrors } from '../util/headway-error.js';

export const ConfigErrors = registerErrors({
  unreadable: {
    code: 'HW_CONFIG_UNREADABLE',
    status: 500,
    meaning: 'The configuration file could not be read (missing, a directory, or no permission).',
    fix: 'Check the path given with --config or HEADWAY_CONFIG, and that the server user may read it.',
  },
  syntax: {
    code: 'HW_CONFIG_SYNTAX',
    status: 500,
    meaning: 'The configuration file is not valid YAML; the message gives line and column.',
    fix: 'Fix the YAML at the reported position (indentation, quotes, duplicate keys).',
  },
  invalid: {
    code: 'HW_CONFIG_INVALID',
    status: 500,
    meaning: 'One or more settings are unknown, of the wrong type, or contradict each other; each line names the key.',
    fix: 'Correct each reported key; config.example.yaml and the configuration reference list every key.',
  },
});

export class ConfigError extends HeadwayError {
  override name = 'ConfigError';
  /** One line per problem, each `<file>: <key>: <what is wrong>`. */
  readonly problems: readonly string[];

  constructor(spec: (typeof ConfigErrors)[keyof typeof ConfigErrors], problems: readonly string[], options?: { cause?: unknown }) {
    super(spec, problems.join('\n'), options);
    this.problems = Object.freeze([...problems]);
  }
}
