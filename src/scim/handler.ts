// SCIM 2.0 (RFC 7643/7644) for identity providers that push users and groups, as Okta and
// Entra ID do for Tailscale: /scim/v2/Users and /scim/v2/Groups with a bearer token from the
// config. Users are keyed by email (userName); a deactivated user's devices are withheld from
// the tailnet at once; a group's members get the group as a synced group (policies write
// `group:<displayName>@<domain>`). Every write goes through the state part (one transaction,
// audited) and reaches connected nodes as ordinary user changes.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ScimConfig } from '../config/index.js';
import type { Logger } from '../log/index.js';
import type { User, UserId } from '../model/index.js';
import type { Actor, ScimGroup, ServerState, TailnetState } from '../state/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { ScimErrors } from './errors.js';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const MAX_BODY_BYTES = 1 << 20;
const ACTOR: Actor = { name: 'scim' };

export interface ScimHandler {
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

type Json = Record<string, unknown>;

function invalid(detail: string): HeadwayError {
  return new HeadwayError(ScimErrors.INVALID_REQUEST, detail);
}

export function createScimHandler(deps: { state: ServerState; config: ScimConfig; serverUrl: string; logger: Logger }): ScimHandler {
  const tokenHash = createHash('sha256').update(deps.config.token).digest();
  const base = `${deps.serverUrl.replace(/\/+$/, '')}/scim/v2`;

  const authorized = (req: IncomingMessage): boolean => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (match === null) return false;
    return timingSafeEqual(createHash('sha256').update(match[1]!.trim()).digest(), tokenHash);
  };

  return {
    async handle(req, res) {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (!url.pathname.startsWith('/scim/v2/') && url.pathname !== '/scim/v2') return false;
      try {
        if (!authorized(req)) throw new HeadwayError(ScimErrors.UNAUTHORIZED, 'missing or wrong bearer token');
        const tailnet = deps.state.requireTailnet(deps.config.tailnet);
        const parts = url.pathname.slice('/scim/v2/'.length).split('/').filter((p) => p !== '');
        const method = req.method ?? 'GET';
        const body = method === 'POST' || method === 'PUT' || method === 'PATCH' ? await readJson(req) : null;
        const [kind, id] = parts;
        if (kind === 'Users') {
          const answer = await users(tailnet, method, id, body, url.searchParams);
          send(res, answer.status, answer.body);
        } else if (kind === 'Groups') {
          const answer = await groups(tailnet, method, id, body, url.searchParams);
          send(res, answer.status, answer.body);
        } else if (kind === 'ServiceProviderConfig' && method === 'GET') {
          send(res, 200, {
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
            patch: { supported: true }, bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
            filter: { supported: true, maxResults: 1000 }, changePassword: { supported: false },
            sort: { supported: false }, etag: { supported: false },
            authenticationSchemes: [{ type: 'oauthbearertoken', name: 'Bearer token', description: 'scim.token from the Headway config' }],
          });
        } else {
          throw new HeadwayError(ScimErrors.NOT_FOUND, `no SCIM resource at ${url.pathname}`);
        }
      } catch (err) {
        if (!(err instanceof HeadwayError)) throw err;
        if (err.status >= 500) deps.logger.error({ err }, 'SCIM request failed');
        else deps.logger.info({ code: err.code, detail: err.message, path: url.pathname }, 'SCIM request refused');
        const status = err.code === 'HW_STATE_USER_NOT_FOUND' ? 400 : err.code === 'HW_STORE_SCIM_GROUP_EXISTS' || err.code === 'HW_STATE_USER_EXISTS' ? 409 : err.status;
        send(res, status, {
          schemas: [ERROR_SCHEMA],
          status: String(status),
          ...(status === 409 ? { scimType: 'uniqueness' } : status === 400 ? { scimType: 'invalidValue' } : {}),
          detail: err.message,
        });
      }
      return true;
    },
  };

  // --- Users ----------------------------------------------------------------------------------

  async function users(tailnet: TailnetState, method: string, id: string | undefined, body: Json | null, query: URLSearchParams): Promise<{ status: number; body: unknown }> {
    if (id === undefined) {
      if (method === 'GET') {
        const filter = parseFilter(query.get('filter'), ['userName', 'externalId', 'emails.value']);
        const all = [...tailnet.users()].filter((u) => filter === null || userMatches(u, filter));
        return { status: 200, body: await list(all, query, (u) => userResource(tailnet, u)) };
      }
      if (method === 'POST') {
        const input = userInput(body!);
        if ([...tailnet.users()].some((u) => u.email !== '' && u.email === input.email)) {
          throw new HeadwayError(ScimErrors.CONFLICT, `a user with the email ${input.email} already exists`);
        }
        const user = await tailnet.createUser({
          name: uniqueName(tailnet, input.email),
          email: input.email,
          displayName: input.displayName,
          active: input.active,
          // '' marks a user provisioned by SCIM without an externalId: still the provider's.
          scimExternalId: input.externalId ?? '',
        }, ACTOR);
        return { status: 201, body: await userResource(tailnet, user) };
      }
      throw invalid(`${method} is not supported on /Users`);
    }
    const user = findUser(tailnet, id);
    switch (method) {
      case 'GET':
        return { status: 200, body: await userResource(tailnet, user) };
      case 'PUT': {
        const input = userInput(body!);
        const updated = await tailnet.updateUser(user.id, {
          email: input.email, displayName: input.displayName, active: input.active, scimExternalId: input.externalId ?? user.scimExternalId ?? '',
        }, ACTOR, { action: 'scim.user.replace' });
        return { status: 200, body: await userResource(tailnet, updated) };
      }
      case 'PATCH': {
        const patch: { active?: boolean; displayName?: string; email?: string; scimExternalId?: string } = {};
        for (const op of patchOperations(body!)) {
          const values: Json = op.path === null ? asObject(op.value, 'Operations[].value') : { [op.path]: op.value };
          if (op.op === 'remove') throw invalid(`removing ${op.path ?? 'attributes'} of a user is not supported`);
          for (const [key, value] of Object.entries(values)) {
            if (key === 'active') patch.active = asBool(value, 'active');
            else if (key === 'displayName') patch.displayName = asString(value, 'displayName');
            else if (key === 'externalId') patch.scimExternalId = asString(value, 'externalId');
            else if (key === 'userName' || key === 'emails[type eq "work"].value') patch.email = asString(value, key).toLowerCase();
            else if (key === 'name.formatted') patch.displayName = asString(value, key);
            // Other attributes (name.givenName, title, ...) have no place in Headway: ignored.
          }
        }
        const updated = Object.keys(patch).length === 0 ? user : await tailnet.updateUser(user.id, patch, ACTOR, { action: patch.active === false ? 'scim.user.deactivate' : 'scim.user.update' });
        return { status: 200, body: await userResource(tailnet, updated) };
      }
      case 'DELETE':
        // Devices stay registered (an admin decides about them) but lose access at once.
        await tailnet.updateUser(user.id, { active: false }, ACTOR, { action: 'scim.user.deactivate' });
        return { status: 204, body: null };
      default:
        throw invalid(`${method} is not supported on /Users/{id}`);
    }
  }

  async function userResource(tailnet: TailnetState, user: User): Promise<Json> {
    const memberOf = (await tailnet.listScimGroups()).filter((g) => g.members.includes(user.id));
    return {
      schemas: [USER_SCHEMA],
      id: String(user.id),
      ...(user.scimExternalId ? { externalId: user.scimExternalId } : {}),
      userName: user.email !== '' ? user.email : user.name,
      displayName: user.displayName,
      name: { formatted: user.displayName },
      emails: user.email !== '' ? [{ value: user.email, primary: true, type: 'work' }] : [],
      active: user.active,
      groups: memberOf.map((g) => ({ value: g.id, display: g.displayName, $ref: `${base}/Groups/${g.id}` })),
      meta: { resourceType: 'User', created: user.createdAt.toISOString(), location: `${base}/Users/${user.id}` },
    };
  }

  // --- Groups ---------------------------------------------------------------------------------

  async function groups(tailnet: TailnetState, method: string, id: string | undefined, body: Json | null, query: URLSearchParams): Promise<{ status: number; body: unknown }> {
    if (id === undefined) {
      if (method === 'GET') {
        const filter = parseFilter(query.get('filter'), ['displayName', 'externalId']);
        const all = (await tailnet.listScimGroups()).filter((g) => filter === null || (filter.attribute === 'displayName' ? g.displayName === filter.value : g.externalId === filter.value));
        return { status: 200, body: await list(all, query, async (g) => groupResource(g)) };
      }
      if (method === 'POST') {
        const displayName = asString(body!['displayName'], 'displayName');
        const group = await tailnet.createScimGroup({
          displayName,
          externalId: body!['externalId'] === undefined ? null : asString(body!['externalId'], 'externalId'),
          members: memberIds(tailnet, body!['members'] ?? []),
        }, ACTOR);
        return { status: 201, body: groupResource(group) };
      }
      throw invalid(`${method} is not supported on /Groups`);
    }
    const group = await tailnet.getScimGroup(id);
    if (group === undefined) throw new HeadwayError(ScimErrors.NOT_FOUND, `no SCIM group ${id}`);
    switch (method) {
      case 'GET':
        return { status: 200, body: groupResource(group) };
      case 'PUT': {
        const updated = await tailnet.updateScimGroup(group.id, {
          displayName: asString(body!['displayName'], 'displayName'),
          members: memberIds(tailnet, body!['members'] ?? []),
        }, ACTOR);
        return { status: 200, body: groupResource(updated) };
      }
      case 'PATCH': {
        let members = [...group.members];
        let displayName: string | undefined;
        for (const op of patchOperations(body!)) {
          const path = op.path ?? '';
          const filtered = /^members\[value eq "([^"]+)"\]$/.exec(path);
          if (filtered !== null && op.op === 'remove') {
            members = members.filter((m) => String(m) !== filtered[1]);
          } else if (path === 'members') {
            const ids = op.op === 'remove' && op.value === undefined ? members : memberIds(tailnet, op.value);
            if (op.op === 'add') members = [...new Set([...members, ...ids])];
            else if (op.op === 'remove') members = members.filter((m) => !ids.includes(m));
            else members = ids;
          } else if (path === 'displayName' && op.op !== 'remove') {
            displayName = asString(op.value, 'displayName');
          } else if (path === '' && op.op === 'replace') {
            const values = asObject(op.value, 'Operations[].value');
            if (values['displayName'] !== undefined) displayName = asString(values['displayName'], 'displayName');
            if (values['members'] !== undefined) members = memberIds(tailnet, values['members']);
          } else {
            throw invalid(`unsupported group patch operation: ${op.op} ${path || '(no path)'}`);
          }
        }
        const updated = await tailnet.updateScimGroup(group.id, { members, ...(displayName !== undefined ? { displayName } : {}) }, ACTOR);
        return { status: 200, body: groupResource(updated) };
      }
      case 'DELETE':
        await tailnet.deleteScimGroup(group.id, ACTOR);
        return { status: 204, body: null };
      default:
        throw invalid(`${method} is not supported on /Groups/{id}`);
    }
  }

  function groupResource(group: ScimGroup): Json {
    return {
      schemas: [GROUP_SCHEMA],
      id: group.id,
      ...(group.externalId !== null ? { externalId: group.externalId } : {}),
      displayName: group.displayName,
      members: group.members.map((m) => ({ value: String(m), $ref: `${base}/Users/${m}` })),
      meta: { resourceType: 'Group', created: group.createdAt.toISOString(), location: `${base}/Groups/${group.id}` },
    };
  }
}

// --- helpers ------------------------------------------------------------------------------------

async function list<T>(items: readonly T[], query: URLSearchParams, render: (item: T) => Promise<Json> | Json): Promise<Json> {
  const startIndex = Math.max(1, Number.parseInt(query.get('startIndex') ?? '1', 10) || 1);
  const count = Math.min(1000, Math.max(0, Number.parseInt(query.get('count') ?? '100', 10) || 0));
  const page = items.slice(startIndex - 1, startIndex - 1 + count);
  return { schemas: [LIST_SCHEMA], totalResults: items.length, startIndex, itemsPerPage: page.length, Resources: await Promise.all(page.map(render)) };
}

/** The one filter form SCIM clients send for lookups: `<attribute> eq "<value>"`. */
function parseFilter(text: string | null, attributes: readonly string[]): { attribute: string; value: string } | null {
  if (text === null || text.trim() === '') return null;
  const match = /^\s*([A-Za-z.]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(text);
  if (match === null || !attributes.includes(match[1]!)) {
    throw invalid(`filter ${JSON.stringify(text)}: only ${attributes.map((a) => `${a} eq "..."`).join(', ')} are supported`);
  }
  return { attribute: match[1]!, value: match[2]!.replace(/\\(.)/g, '$1') };
}

function userMatches(user: User, filter: { attribute: string; value: string }): boolean {
  const value = filter.value.toLowerCase();
  if (filter.attribute === 'externalId') return (user.scimExternalId ?? '') === filter.value;
  return user.email.toLowerCase() === value || (filter.attribute === 'userName' && user.email === '' && user.name === value);
}

function userInput(body: Json): { email: string; displayName: string; active: boolean; externalId: string | undefined } {
  const userName = asString(body['userName'], 'userName').trim();
  const emails = Array.isArray(body['emails']) ? body['emails'] as unknown[] : [];
  const primary = emails.map((e) => asObject(e, 'emails[]')).find((e) => e['primary'] === true) ?? (emails.length > 0 ? asObject(emails[0], 'emails[]') : undefined);
  const email = (primary !== undefined ? asString(primary['value'], 'emails[].value') : userName).trim().toLowerCase();
  if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw invalid(`userName/emails: ${JSON.stringify(email)} is not an email address`);
  const name = body['name'] === undefined ? {} : asObject(body['name'], 'name');
  const displayName = body['displayName'] !== undefined ? asString(body['displayName'], 'displayName')
    : name['formatted'] !== undefined ? asString(name['formatted'], 'name.formatted')
      : [name['givenName'], name['familyName']].filter((p): p is string => typeof p === 'string').join(' ');
  return {
    email,
    displayName,
    active: body['active'] === undefined ? true : asBool(body['active'], 'active'),
    externalId: body['externalId'] === undefined ? undefined : asString(body['externalId'], 'externalId'),
  };
}

function memberIds(tailnet: TailnetState, value: unknown): UserId[] {
  if (!Array.isArray(value)) throw invalid('members: want a list of {"value": "<user id>"}');
  return value.map((entry, i) => {
    const id = asString(asObject(entry, `members[${i}]`)['value'], `members[${i}].value`);
    const user = /^[0-9]+$/.test(id) ? tailnet.user(Number(id) as UserId) : undefined;
    if (user === undefined) throw invalid(`members[${i}].value: no user ${JSON.stringify(id)}`);
    return user.id;
  });
}

function patchOperations(body: Json): Array<{ op: 'add' | 'remove' | 'replace'; path: string | null; value: unknown }> {
  const schemas = body['schemas'];
  if (!Array.isArray(schemas) || !schemas.includes(PATCH_SCHEMA)) throw invalid(`schemas: a PATCH body must name ${PATCH_SCHEMA}`);
  const operations = body['Operations'];
  if (!Array.isArray(operations) || operations.length === 0) throw invalid('Operations: want a non-empty list');
  return operations.map((raw, i) => {
    const op = asObject(raw, `Operations[${i}]`);
    const name = asString(op['op'], `Operations[${i}].op`).toLowerCase();
    if (name !== 'add' && name !== 'remove' && name !== 'replace') throw invalid(`Operations[${i}].op: ${JSON.stringify(name)} is not add, remove or replace`);
    return { op: name, path: op['path'] === undefined ? null : asString(op['path'], `Operations[${i}].path`), value: op['value'] };
  });
}

function findUser(tailnet: TailnetState, id: string): User {
  const user = /^[0-9]+$/.test(id) ? tailnet.user(Number(id) as UserId) : undefined;
  if (user === undefined) throw new HeadwayError(ScimErrors.NOT_FOUND, `no SCIM user ${id}`);
  return user;
}

function uniqueName(tailnet: TailnetState, email: string): string {
  const base = email.slice(0, email.lastIndexOf('@')).replace(/[^a-z0-9._-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 48) || 'user';
  if (tailnet.userByName(base) === undefined) return base;
  for (let i = 2; ; i++) if (tailnet.userByName(`${base}-${i}`) === undefined) return `${base}-${i}`;
}

function asString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid(`${field}: want a string`);
  return value;
}

/** Entra ID sends booleans as the strings "True"/"False" in PATCH operations. */
function asBool(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw invalid(`${field}: want true or false`);
}

function asObject(value: unknown, field: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${field}: want an object`);
  return value as Json;
}

async function readJson(req: IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw invalid('the body is larger than 1 MiB');
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw invalid('the body is not JSON');
  }
  return asObject(value, 'body');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (body === null) {
    res.writeHead(status);
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/scim+json' });
  res.end(JSON.stringify(body));
}
