// Live changes for the web console as server-sent events, fed by the tailnet's state events
// (the change engine): a node coming online or going offline reaches an open console at once.
// Each event carries what a list row needs, so the console updates without a refetch; users and
// policy changes are announced for the console to refetch. Members get only their own nodes.
import { z } from 'zod';
import type { Node } from '../model/index.js';
import type { StateEvent } from '../state/index.js';
import { visibleTo } from './nodes.js';
import { defineRoute, type Route } from './route.js';
import { nodeJsonFrom } from './schemas.js';

const HEARTBEAT_MS = 15_000;

export const eventRoutes: readonly Route[] = [
  defineRoute({
    operationId: 'streamEvents',
    method: 'GET',
    path: '/events',
    group: 'events',
    scope: 'tailnet',
    members: true,
    stream: true,
    summary: 'Live changes of a tailnet (text/event-stream)',
    description:
      'Server-sent events, one JSON object per `data:` line: `{"type":"node","node":<Node>}` when a node is added or ' +
      'changes (online/offline included), `{"type":"nodeRemoved","id":<id>}`, `{"type":"users"}` and `{"type":"policy"}` ' +
      'when those change. A comment line every 15 s keeps proxies from closing the stream; with a console session, the ' +
      'stream ends when the session does (sign-out, idle timeout).',
    response: z.object({}),
    async handle({ tailnet, viewer, deps, raw }) {
      const { req, res } = raw;
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
        'X-Accel-Buffering': 'no',
      });
      res.write(': connected\n\n');
      const send = (value: unknown) => res.write(`data: ${JSON.stringify(value)}\n\n`);
      const sendNode = (node: Node | undefined) => {
        if (node !== undefined && visibleTo(viewer, node)) send({ type: 'node', node: nodeJsonFrom(node, tailnet, deps.now()) });
      };
      const onEvent = (event: StateEvent) => {
        switch (event.kind) {
          case 'nodeAdded': sendNode(event.node); break;
          case 'nodeChanged': sendNode(tailnet.node(event.after.id)); break;
          case 'presenceChanged': sendNode(tailnet.node(event.nodeId)); break;
          case 'nodeRemoved': if (visibleTo(viewer, event.node)) send({ type: 'nodeRemoved', id: event.node.id }); break;
          case 'userAdded': case 'userChanged': case 'userRemoved': send({ type: 'users' }); break;
          case 'policyChanged': send({ type: 'policy' }); break;
          case 'tailnetDeleted': res.end(); break;
        }
      };
      const unsubscribe = tailnet.subscribe(onEvent);
      // A console session's stream ends with the session (sign-out, idle timeout, maximum age);
      // the check does not count as activity, so an open tab does not keep the session alive.
      const heartbeat = setInterval(() => {
        if (viewer.session === null) {
          res.write(': keep-alive\n\n');
          return;
        }
        deps.sessions.authenticate(req.headers.cookie, { touch: false }).then(
          () => res.write(': keep-alive\n\n'),
          () => res.end(),
        );
      }, HEARTBEAT_MS);
      heartbeat.unref();
      const stop = () => {
        clearInterval(heartbeat);
        unsubscribe();
      };
      req.once('close', stop);
      res.once('close', stop);
      return {};
    },
  }),
];
