// Tags an admin applies (node tags, pre-auth key tags, tagged registrations) must be defined in
// the tailnet policy's tagOwners when the tailnet has a policy; without a policy any well-formed
// tag is accepted (there is nothing to check against, as in Tailscale's default policy). Syntax
// is checked by the request schema (`tagName`). An admin may apply any defined tag: owning it is
// what a node or a user's login needs, not the admin.
import { parsePolicy, PolicyError } from '../policy/index.js';
import type { TailnetState } from '../state/index.js';
import { ApiErrors, ApiValidationError, apiError } from './errors.js';

export function requireTagsDefined(tailnet: TailnetState, tags: readonly string[], field: string): void {
  const text = tailnet.policyText;
  if (tags.length === 0 || text === null) return;
  let defined: ReadonlyMap<string, unknown>;
  try {
    defined = parsePolicy(text).tagOwners;
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    throw apiError(ApiErrors.policyUnusable, `tailnet "${tailnet.name}": its policy does not parse (${err.message}), so tags cannot be checked; fix the policy first`, err);
  }
  const problems = tags
    .map((tag, i) => ({ tag, i }))
    .filter(({ tag }) => !defined.has(tag))
    .map(({ tag, i }) => ({ field: `${field}[${i}]`, problem: `${JSON.stringify(tag)} is not defined in the policy's tagOwners (add it there first)` }));
  if (problems.length > 0) throw new TagNotDefinedError(problems);
}

/** A 400 naming each undefined tag; a validation error with its own code. */
class TagNotDefinedError extends ApiValidationError {
  override readonly code = ApiErrors.tagNotOwned.code;
}
