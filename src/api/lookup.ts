// How a request names things: a user or node by its numeric id or its name, a pre-auth key by
// its id or prefix. A number is tried as an id first, then as a name, so a user literally named
// "42" is still reachable when no user has id 42.
import type { Node, NodeId, PreAuthKey, User, UserId } from '../model/index.js';
import { StateErrors, type ServerState, type TailnetState } from '../state/index.js';
import { HeadwayError } from '../util/headway-error.js';

const NUMERIC = /^[1-9][0-9]{0,15}$/;

export function findUser(tailnet: TailnetState, ref: string | number): User {
  const text = String(ref);
  const byId = NUMERIC.test(text) ? tailnet.user(Number(text) as UserId) : undefined;
  const user = byId ?? tailnet.userByName(text);
  if (user === undefined) {
    throw new HeadwayError(StateErrors.USER_NOT_FOUND, `user ${JSON.stringify(text)} not found in tailnet "${tailnet.name}"`);
  }
  return user;
}

export function findNode(tailnet: TailnetState, ref: string | number, state: ServerState): Node {
  const text = String(ref);
  let node: Node | undefined = NUMERIC.test(text) ? tailnet.node(Number(text) as NodeId) : undefined;
  node ??= tailnet.nodeByGivenName(text);
  if (node === undefined && text.startsWith('nodekey:')) {
    const found = state.nodeByKey(text.toLowerCase() as Node['nodeKey']);
    if (found !== undefined && found.tailnet === tailnet) node = found.node;
  }
  if (node === undefined) {
    throw new HeadwayError(StateErrors.NODE_NOT_FOUND, `node ${JSON.stringify(text)} not found in tailnet "${tailnet.name}"`);
  }
  return node;
}

/** Strips what a user may paste around a pre-auth key prefix (`hwkey-auth-<prefix>-...`). */
function preAuthKeyPrefixOf(text: string): string {
  let rest = text.trim();
  if (rest.startsWith('hwkey-auth-')) rest = rest.slice('hwkey-auth-'.length);
  const dash = rest.indexOf('-');
  return dash === -1 ? rest : rest.slice(0, dash);
}

export async function findPreAuthKey(state: ServerState, tailnet: TailnetState, ref: string): Promise<PreAuthKey> {
  const keys = await state.listPreAuthKeys(tailnet);
  const key = (NUMERIC.test(ref) ? keys.find((k) => k.id === Number(ref)) : undefined)
    ?? keys.find((k) => k.prefix === preAuthKeyPrefixOf(ref));
  if (key === undefined) {
    // Name the key by its prefix only: the reference may be a whole key, secret included.
    throw new HeadwayError(StateErrors.PREAUTHKEY_NOT_FOUND, `pre-auth key ${JSON.stringify(preAuthKeyPrefixOf(ref))} not found in tailnet "${tailnet.name}"`);
  }
  return key;
}
