// Tags an admin applies (node tags, pre-auth key tags, tagged registrations) must be defined in
// the tailnet policy's tagOwners when the tailnet has a policy. Syntax is checked by the
// request schema (schemas.ts `tagName`).
import type { TailnetState } from '../state/index.js';

// TODO(#2): check tagOwners with the policy module once src/policy is merged.
export function requireTagsDefined(_tailnet: TailnetState, _tags: readonly string[], _field: string): void {}
