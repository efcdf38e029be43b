// What an SSH server asks the control server for a check rule: the action at a check URL (the
// policy's, or a held follow-up's), fetched over the node's own Noise connection.
import assert from 'node:assert/strict';
import type { NodeClient } from '../../src/client/index.js';
import type * as tailcfg from '../../src/tailcfg/index.js';

/** A policy whose members must pass an SSH check (within an hour) to log in to tag:server as root. */
export const CHECK_POLICY = JSON.stringify({
  tagOwners: { 'tag:server': ['autogroup:admin'] },
  acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }],
  ssh: [{ action: 'check', src: ['autogroup:member'], dst: ['tag:server'], users: ['root'], checkPeriod: '1h' }],
});

/** The check URL of CHECK_POLICY's rule, as the SSH server receives it. */
export const CHECK_URL = 'https://unused/machine/ssh/action/$SRC_NODE_ID/to/$DST_NODE_ID?local_user=root';

export async function fetchSshAction(client: NodeClient, url: string, src: number, dst: number): Promise<tailcfg.SSHAction> {
  const target = new URL(url.replaceAll('$SRC_NODE_ID', String(src)).replaceAll('$DST_NODE_ID', String(dst)));
  const res = await (await client.control()).request(`${target.pathname}${target.search}`);
  assert.equal(res.status, 200, res.body.toString());
  return res.json as tailcfg.SSHAction;
}
