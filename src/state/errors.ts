import { HeadwayError, registerErrors } from '../util/headway-error.js';

export const StateErrors = registerErrors({
  TAILNET_NOT_FOUND: {
    code: 'HW_STATE_TAILNET_NOT_FOUND', status: 404,
    meaning: 'No tailnet has that name or id.',
    fix: 'List tailnets with `headway tailnets list`, or pass the right --tailnet.',
  },
  TAILNET_EXISTS: {
    code: 'HW_STATE_TAILNET_EXISTS', status: 409,
    meaning: 'A tailnet with that name already exists.',
    fix: 'Choose another name.',
  },
  TAILNET_DEFAULT: {
    code: 'HW_STATE_TAILNET_DEFAULT', status: 409,
    meaning: 'The default tailnet cannot be deleted.',
    fix: 'Delete its nodes and users instead.',
  },
  USER_NOT_FOUND: {
    code: 'HW_STATE_USER_NOT_FOUND', status: 404,
    meaning: 'No user has that name or id in the tailnet.',
    fix: 'List users with `headway users list`.',
  },
  USER_EXISTS: {
    code: 'HW_STATE_USER_EXISTS', status: 409,
    meaning: 'A user with that name already exists in the tailnet.',
    fix: 'Choose another name.',
  },
  OWNER_BY_TRANSFER: {
    code: 'HW_STATE_OWNER_BY_TRANSFER', status: 409,
    meaning: 'A tailnet has exactly one owner: the owner role is given only by transferring ownership, and the owner keeps it (and cannot be deleted) until ownership moves.',
    fix: 'Transfer ownership with `headway tailnets owner <tailnet> <user>` (PUT /api/v1/tailnets/{tailnet}/owner), then change or delete the former owner.',
  },
  NOT_OWNER: {
    code: 'HW_STATE_NOT_OWNER', status: 403,
    meaning: 'Only the tailnet\'s owner may transfer its ownership.',
    fix: 'Ask the owner to transfer it, or use a server admin credential (API key or the local socket).',
  },
  USER_HAS_NODES: {
    code: 'HW_STATE_USER_HAS_NODES', status: 409,
    meaning: 'The user still owns nodes.',
    fix: 'Delete or move the nodes first.',
  },
  NODE_NOT_FOUND: {
    code: 'HW_STATE_NODE_NOT_FOUND', status: 404,
    meaning: 'No node has that id, name or key in the tailnet.',
    fix: 'List nodes with `headway nodes list`.',
  },
  NODE_NAME_TAKEN: {
    code: 'HW_STATE_NODE_NAME_TAKEN', status: 409,
    meaning: 'Another node of the tailnet already has that name.',
    fix: 'Choose another name.',
  },
  NODE_NAME_INVALID: {
    code: 'HW_STATE_NODE_NAME_INVALID', status: 400,
    meaning: 'A node name must be one DNS label: lower-case letters, digits and inner dashes, at most 63 characters.',
    fix: 'Choose a name like `db-1`.',
  },
  NODE_KEY_IN_USE: {
    code: 'HW_STATE_NODE_KEY_IN_USE', status: 409,
    meaning: 'Another node already uses that node key.',
    fix: 'The client must generate a new node key (log out and in again).',
  },
  NODE_OWNER_INVALID: {
    code: 'HW_STATE_NODE_OWNER_INVALID', status: 400,
    meaning: 'A node must be owned by a user or carry at least one tag.',
    fix: 'Give the node a user or tags.',
  },
  TAG_INVALID: {
    code: 'HW_STATE_TAG_INVALID', status: 400,
    meaning: 'A tag must be `tag:` followed by a letter and then letters, digits or dashes.',
    fix: 'Write tags like `tag:web`.',
  },
  ROUTE_INVALID: {
    code: 'HW_STATE_ROUTE_INVALID', status: 400,
    meaning: 'A route must be an IP prefix with no host bits set.',
    fix: 'Write routes like `10.0.0.0/24` or `0.0.0.0/0`.',
  },
  AUTHKEY_INVALID: {
    code: 'HW_STATE_AUTHKEY_INVALID', status: 401,
    meaning: 'The pre-auth key is unknown, expired, revoked, or single-use and already used.',
    fix: 'Create a new key with `headway preauthkeys create`.',
  },
  PENDING_NOT_FOUND: {
    code: 'HW_STATE_PENDING_NOT_FOUND', status: 404,
    meaning: 'No login is waiting for that registration key (it may have expired).',
    fix: 'Run `tailscale up` again on the device and use the new key it prints.',
  },
  APIKEY_NOT_FOUND: {
    code: 'HW_STATE_APIKEY_NOT_FOUND', status: 404,
    meaning: 'No API key has that prefix.',
    fix: 'List keys with `headway apikeys list`.',
  },
  PREAUTHKEY_NOT_FOUND: {
    code: 'HW_STATE_PREAUTHKEY_NOT_FOUND', status: 404,
    meaning: 'No pre-auth key has that id or prefix in the tailnet.',
    fix: 'List keys with `headway preauthkeys list`.',
  },
});

export function stateError(spec: (typeof StateErrors)[keyof typeof StateErrors], message: string, cause?: unknown): HeadwayError {
  return new HeadwayError(spec, message, cause === undefined ? undefined : { cause });
}
