// GET /key?v=<capver>: the server's Noise public key (protocol.md §2). `publicKey` is the key
// clients dial /ts2021 with; `legacyPublicKey` belongs to the pre-2022 NaCl protocol, which
// Headway does not speak, so it is the zero key (as headscale sends; modern clients ignore it).
//
// Without `v` we still answer the JSON: clients newer than capver 39 always send `v`, ancient
// ones cannot log in anyway, and a JSON body is the most useful answer for a person with curl
// (Tailscale's testcontrol answers bare legacy hex there, headscale 400).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MachinePublicKey } from '../key/index.js';
import type { OverTLSPublicKeyResponse } from '../tailcfg/index.js';

const ZERO_MACHINE_KEY = `mkey:${'0'.repeat(64)}`;

export function keyResponseBody(serverPublicKey: MachinePublicKey): OverTLSPublicKeyResponse {
  return { legacyPublicKey: ZERO_MACHINE_KEY, publicKey: serverPublicKey };
}

/** Answers GET/HEAD /key. The caller has matched the path. */
export function handleKeyRequest(req: IncomingMessage, res: ServerResponse, serverPublicKey: MachinePublicKey, url: URL): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('GET /key?v=<capability version>\n');
    return;
  }
  const version = url.searchParams.get('v');
  if (version !== null && !/^\d{1,5}$/.test(version)) {
    res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8' }).end('/key: v must be an integer capability version\n');
    return;
  }
  const body = JSON.stringify(keyResponseBody(serverPublicKey));
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
}
