// Users of a tailnet: list, create, update (rename, role), delete.
import { z } from 'zod';
import { findUser } from './lookup.js';
import { defineRoute, type Route } from './route.js';
import type { UserRole } from '../model/index.js';
import { assignableRole, userJsonFrom, userSchema } from './schemas.js';

const userParam = z.strictObject({ user: z.string().min(1).describe('The user: its name or numeric id.') });
const userName = z.string().min(1).max(255).describe('Unique per tailnet, e.g. `alice` or `alice@example.com`.');

export const userRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'listUsers',
    method: 'GET',
    path: '/users',
    group: 'users',
    scope: 'tailnet',
    summary: 'List the users of a tailnet',
    response: z.object({ users: z.array(userSchema) }),
    errors: [404],
    async handle({ tailnet }) {
      const users = [...tailnet.users()].sort((a, b) => a.id - b.id);
      return { users: users.map(userJsonFrom) };
    },
  }),
  defineRoute({
    operationId: 'createUser',
    method: 'POST',
    path: '/users',
    group: 'users',
    scope: 'tailnet',
    summary: 'Create a user',
    body: z.strictObject({
      name: userName,
      display_name: z.string().max(255).optional(),
      email: z.string().max(255).optional(),
      role: assignableRole.optional(),
    }),
    response: userSchema,
    status: 201,
    errors: [404, 409],
    async handle({ tailnet, body, actor }) {
      const user = await tailnet.createUser({ name: body.name, displayName: body.display_name, email: body.email, role: body.role }, actor);
      return userJsonFrom(user);
    },
  }),
  defineRoute({
    operationId: 'updateUser',
    method: 'PATCH',
    path: '/users/{user}',
    group: 'users',
    scope: 'tailnet',
    summary: 'Rename a user or change its display name, email or role',
    params: userParam,
    body: z.strictObject({
      name: userName.optional(),
      display_name: z.string().max(255).optional(),
      email: z.string().max(255).optional(),
      role: assignableRole.optional(),
    }).refine((b) => Object.keys(b).length > 0, { error: 'nothing to change (give name, display_name, email or role)' }),
    response: userSchema,
    errors: [404, 409],
    async handle({ tailnet, params, body, actor }) {
      const user = findUser(tailnet, params.user);
      const patch: { name?: string; displayName?: string; email?: string; role?: UserRole } = {};
      if (body.name !== undefined) patch.name = body.name;
      if (body.display_name !== undefined) patch.displayName = body.display_name;
      if (body.email !== undefined) patch.email = body.email;
      if (body.role !== undefined) patch.role = body.role;
      return userJsonFrom(await tailnet.updateUser(user.id, patch, actor));
    },
  }),
  defineRoute({
    operationId: 'deleteUser',
    method: 'DELETE',
    path: '/users/{user}',
    group: 'users',
    scope: 'tailnet',
    summary: 'Delete a user; returns it as it was',
    description: 'A user who still owns nodes cannot be deleted (409): delete or move the nodes first.',
    params: userParam,
    response: userSchema,
    errors: [404, 409],
    async handle({ tailnet, params, actor }) {
      const user = findUser(tailnet, params.user);
      await tailnet.deleteUser(user.id, actor);
      return userJsonFrom(user);
    },
  }),
];
