// Every error the policy part raises on purpose. A PolicyError about a policy file says where
// (file:line:column and the JSON path of the offending key or value), what is wrong, and the
// fix when we know it. Where Tailscale's service rejects the same policy, our message contains
// the service's own wording, so users can search for it.
import { HeadwayError, registerErrors, type ErrorSpec } from '../util/headway-error.js';

export const PolicyErrors = registerErrors({
  syntax: {
    code: 'HW_POLICY_SYNTAX',
    status: 400,
    meaning: 'The policy is not valid HuJSON (JSON with comments and trailing commas).',
    fix: 'Fix the syntax at the reported line and column.',
  },
  unknownField: {
    code: 'HW_POLICY_UNKNOWN_FIELD',
    status: 400,
    meaning: 'The policy has a key that Tailscale policies do not have (often a typo).',
    fix: 'Remove or rename the key; the message lists the keys allowed there.',
  },
  invalidType: {
    code: 'HW_POLICY_INVALID_TYPE',
    status: 400,
    meaning: 'A policy value has the wrong JSON type (for example a string where a list is expected).',
    fix: 'Write the value with the type the message names.',
  },
  invalidValue: {
    code: 'HW_POLICY_INVALID_VALUE',
    status: 400,
    meaning: 'A policy value is malformed or not allowed where it is written.',
    fix: 'Correct the value as the message explains.',
  },
  unknownReference: {
    code: 'HW_POLICY_UNKNOWN_REFERENCE',
    status: 400,
    meaning: 'The policy refers to a tag, group, host, posture or ipset it does not define.',
    fix: 'Define it (tags in tagOwners, groups in groups, hosts in hosts) or fix the name.',
  },
  invalidSelector: {
    code: 'HW_POLICY_INVALID_SELECTOR',
    status: 400,
    meaning: 'A source, destination or target cannot be used where it is written (for example autogroup:self as a source).',
    fix: 'Use a selector allowed in that position; the message names the rule.',
  },
  invalidPorts: {
    code: 'HW_POLICY_INVALID_PORTS',
    status: 400,
    meaning: 'A port list, port range or protocol is malformed.',
    fix: 'Write ports as *, a number, first-last, or a comma list of those; protocols by IANA name or number.',
  },
  invalidCapability: {
    code: 'HW_POLICY_INVALID_CAPABILITY',
    status: 400,
    meaning: 'An app capability name in a grant is malformed or reserved.',
    fix: 'Name capabilities {domain}/{path} in a domain you control.',
  },
  invalidSsh: {
    code: 'HW_POLICY_INVALID_SSH',
    status: 400,
    meaning: 'An ssh rule is malformed (action, users, checkPeriod or acceptEnv).',
    fix: 'Correct the ssh rule as the message explains.',
  },
  testsFailed: {
    code: 'HW_POLICY_TESTS_FAILED',
    status: 400,
    meaning: "The policy's tests or sshTests do not hold for the tailnet, so the policy was not applied.",
    fix: 'Change the rules or the failing assertion the message names.',
  },
  invalidTopology: {
    code: 'HW_POLICY_INVALID_TOPOLOGY',
    status: 400,
    meaning: 'The topology given to an offline policy command is malformed.',
    fix: 'Write the topology in the shape of a conformance case: users list and nodes map.',
  },
  unknownNode: {
    code: 'HW_POLICY_UNKNOWN_NODE',
    status: 404,
    meaning: 'A policy query named a node that is not in the tailnet.',
    fix: 'Use the name or id of an existing node.',
  },
} as const satisfies Record<string, ErrorSpec>);

export type PolicyErrorKind = keyof typeof PolicyErrors;

/** Where in a policy file an error is. Line and column are 1-based. */
export interface PolicyErrorLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** JSON path of the offending key or value, e.g. `acls[2].dst[0]`; empty for the document. */
  readonly path: string;
}

export class PolicyError extends HeadwayError {
  override name = 'PolicyError';
  readonly kind: PolicyErrorKind;
  /** The problem without the location prefix (contains the service's wording where it has one). */
  readonly detail: string;
  readonly location: PolicyErrorLocation | null;

  constructor(kind: PolicyErrorKind, detail: string, location: PolicyErrorLocation | null, options?: { cause?: unknown }) {
    super(PolicyErrors[kind], formatPolicyMessage(detail, location), options);
    this.kind = kind;
    this.detail = detail;
    this.location = location;
  }
}

function formatPolicyMessage(detail: string, location: PolicyErrorLocation | null): string {
  if (location === null) return detail;
  const where = `${location.file}:${location.line}:${location.column}`;
  return location.path === '' ? `${where}: ${detail}` : `${where}: ${location.path}: ${detail}`;
}
