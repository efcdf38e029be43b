// POST /machine/map: lite updates (endpoints, disco key, hostinfo; answered 200 at once),
// streaming polls (a complete netmap, then deltas and keep-alives until the client leaves) and
// one-shot requests. Which requests may change the node depends on the client's generation:
// below capver 68 the streaming poll carries the endpoints (unless ReadOnly); from 68 on only
// lite updates do (protocol.md §9.1).
import type { MachinePublicKey } from '../key/index.js';
import type { Node } from '../model/index.js';
import { wireVariantOf } from '../mapper/index.js';
import type { LiveUpdate, TailnetState } from '../state/index.js';
import { CapVer, MIN_CAPVER } from '../tailcfg/index.js';
import { HeadwayError } from '../util/headway-error.js';
import type { ControlBackend } from './control-backend.js';
import { MachineErrors } from './machine-errors.js';
import { parseMapRequest, type MapInput } from './machine-request.js';
import type { NoiseRequest, NoiseResponse, NoiseRequestContext } from './noise-request.js';
import { readRequestBody } from './noise-request.js';
import type { FrameSink } from './session/map-session.js';

export async function handleMap(backend: ControlBackend, req: NoiseRequest, res: NoiseResponse, ctx: NoiseRequestContext): Promise<void> {
  const input = parseMapRequest(await readRequestBody(req, ctx.maxRequestBodyBytes));
  const found = ownedNode(backend, input, ctx.machineKey);
  if (input.version !== 0 && input.version < MIN_CAPVER) {
    throw new HeadwayError(MachineErrors.UNSUPPORTED_VERSION, `capability version ${input.version} is older than the oldest supported (${MIN_CAPVER}, Tailscale 1.34)`);
  }
  const { tailnet, node } = found;
  const capVersion = input.version > 0 ? input.version : ctx.protocolVersion;
  const live = liveUpdateOf(input, capVersion);
  if (live !== null) await tailnet.applyLiveUpdate(node.id, live);

  if (!input.stream) {
    if (input.omitPeers) {
      // Lite update: the client reads and discards the body.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end();
      return;
    }
    // One-shot: exactly one complete netmap.
    const services = backend.services(tailnet.id);
    const frame = services.hub.mapper.fullMap(node.id, { capVersion, variant: wireVariantOf(capVersion), sentUsers: new Set(), filterKey: null });
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(frame);
    return;
  }
  openStream(backend, tailnet, tailnet.node(node.id) ?? node, capVersion, res);
}

/**
 * A map stream's frames as a response body. Each write frames its DATA straight into one Noise
 * record sequence: one seal and one transport write per flush (src/control/h2/server-connection.ts).
 */
export function responseSink(res: NoiseResponse): FrameSink {
  return {
    write: (frame) => res.write(frame),
    onceDrain: (listener) => res.once('drain', listener),
    end: () => res.end(),
  };
}

function openStream(backend: ControlBackend, tailnet: TailnetState, node: Node, capVersion: number, res: NoiseResponse): void {
  // The client went away while the request was read: its 'close' has run, nothing to hold.
  if (res.closed) return;
  const services = backend.services(tailnet.id);
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  services.sessionStarted(node, capVersion);
  const session = services.hub.open(node.id, capVersion, responseSink(res));
  res.on('close', () => {
    services.hub.remove(session);
    const current = tailnet.node(node.id);
    if (current !== undefined) services.sessionEnded(current);
  });
}

/** What a map request may change on the node, or null when it changes nothing. */
export function liveUpdateOf(input: MapInput, capVersion: number): LiveUpdate | null {
  const update: { endpoints?: string[]; discoKey?: MapInput['discoKey']; hostinfo?: NonNullable<MapInput['hostinfo']> } = {};
  // Old clients mark the first poll ReadOnly: its (absent) endpoints must not clear the real ones.
  const mayCarryEndpoints = !input.readOnly && (!input.stream || capVersion < CapVer.ReadOnlyStreams);
  if (mayCarryEndpoints && input.endpoints !== null && (input.endpoints.length > 0 || !input.stream)) update.endpoints = input.endpoints;
  // Never replace a known disco key by a zero one.
  if (input.discoKey !== null) update.discoKey = input.discoKey;
  // ReadOnly (below capver 68) protects only the endpoints: 1.34 sets it on every request while
  // it has none, e.g. behind a NAT that gives it no direct path (TS_DEBUG_ALWAYS_USE_DERP), and
  // then the NetInfo in those requests is the only report of its home DERP region.
  if (input.hostinfo !== null) update.hostinfo = input.hostinfo;
  return Object.keys(update).length === 0 ? null : update;
}

function ownedNode(backend: ControlBackend, input: MapInput, machineKey: MachinePublicKey): { tailnet: TailnetState; node: Node } {
  const found = backend.state.nodeByKey(input.nodeKey);
  if (found === undefined || found.node.machineKey !== machineKey) {
    throw new HeadwayError(MachineErrors.NODE_NOT_FOUND, 'node not found');
  }
  return found;
}
