// Routes the HTTP/2 requests of a Noise connection to the /machine handlers. Paths real clients
// call that Headway does not implement get 501, which clients log and tolerate (protocol.md §7).
import type { ControlBackend } from './control-backend.js';
import { handleMap } from './map-handler.js';
import { defaultNoiseHandler, pathOf, readRequestBody, type NoiseRequest, type NoiseResponse, type NoiseRequestContext, type NoiseRequestHandler } from './noise-request.js';
import { handleRegister } from './register-handler.js';
import { SshCheckFlow } from './ssh-check.js';

export function createMachineHandler(backend: ControlBackend): NoiseRequestHandler {
  const sshCheck = new SshCheckFlow(backend);
  return async (req: NoiseRequest, res: NoiseResponse, ctx: NoiseRequestContext) => {
    const path = pathOf(req);
    if (req.method === 'POST' && path === '/machine/register') return handleRegister(backend, req, res, ctx);
    if (req.method === 'POST' && path === '/machine/map') return handleMap(backend, req, res, ctx);
    if (path === '/machine/update-health') {
      // Health reports are informational; accept and drop them so 1.34-1.78 stop retrying.
      await readRequestBody(req, ctx.maxRequestBodyBytes);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    // SSH check mode's hold-and-delegate URL (ssh-check.ts).
    if (req.method === 'GET' && path.startsWith('/machine/ssh/action/')) return sshCheck.handle(req, res, ctx);
    return defaultNoiseHandler(req, res, ctx);
  };
}
