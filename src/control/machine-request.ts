// Parsing the JSON bodies clients send to /machine/register and /machine/map into typed,
// validated requests. Clients omit zero values, send zero keys for "absent" and add fields over
// the years; unknown fields are ignored as Go's decoder ignores them. Samples from real 1.34.2
// and 1.78.3 clients are parsing fixtures (../shared/vectors/client-*).
import { KeyParseError, parsePublicKey, type DiscoPublicKey, type NodePublicKey } from '../key/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { MachineErrors } from './machine-errors.js';

export interface RegisterInput {
  readonly version: number;
  readonly nodeKey: NodePublicKey;
  readonly oldNodeKey: NodePublicKey | null;
  readonly authKey: string | null;
  /** null = no request; a past time = logout; a future time = expire sooner. */
  readonly expiry: Date | null;
  readonly followup: string;
  readonly hostinfo: tailcfg.Hostinfo;
  readonly ephemeral: boolean;
}

export interface MapInput {
  readonly version: number;
  readonly nodeKey: NodePublicKey;
  readonly discoKey: DiscoPublicKey | null;
  readonly stream: boolean;
  readonly omitPeers: boolean;
  readonly readOnly: boolean;
  readonly compress: string;
  readonly hostinfo: tailcfg.Hostinfo | null;
  /** null when the request carried no endpoints field (or null). */
  readonly endpoints: string[] | null;
}

/** Go's zero time, and anything before 1971, count as "not set" only when exactly zero. */
const GO_ZERO_TIME_MS = Date.UTC(1, 0, 1);

function bad(path: string, message: string): HeadwayError {
  return new HeadwayError(MachineErrors.BAD_REQUEST, `${path}: ${message}`);
}

export function parseJsonBody(body: Buffer, path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw bad(path, `body is not JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(path, 'body must be a JSON object');
  return value as Record<string, unknown>;
}

function optString(obj: Record<string, unknown>, field: string, path: string): string {
  const v = obj[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw bad(path, `${field} must be a string`);
  return v;
}

function optBool(obj: Record<string, unknown>, field: string, path: string): boolean {
  const v = obj[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw bad(path, `${field} must be a boolean`);
  return v;
}

function optNumber(obj: Record<string, unknown>, field: string, path: string): number {
  const v = obj[field];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(path, `${field} must be a number`);
  return v;
}

function key<R extends 'node' | 'disco'>(role: R, text: string, field: string, path: string) {
  try {
    return parsePublicKey(role, text);
  } catch (err) {
    if (err instanceof KeyParseError) throw bad(path, `${field}: ${err.message}`);
    throw err;
  }
}

function time(text: string, field: string, path: string): Date | null {
  if (text === '') return null;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw bad(path, `${field}: ${JSON.stringify(text.slice(0, 40))} is not an RFC 3339 time`);
  return ms <= GO_ZERO_TIME_MS ? null : new Date(ms);
}

function hostinfo(value: unknown, path: string): tailcfg.Hostinfo | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw bad(path, 'Hostinfo must be an object');
  const h = value as tailcfg.Hostinfo;
  if (h.RoutableIPs != null && !Array.isArray(h.RoutableIPs)) throw bad(path, 'Hostinfo.RoutableIPs must be a list');
  if (h.RequestTags != null && (!Array.isArray(h.RequestTags) || h.RequestTags.some((t) => typeof t !== 'string'))) {
    throw bad(path, 'Hostinfo.RequestTags must be a list of strings');
  }
  if (h.Hostname !== undefined && typeof h.Hostname !== 'string') throw bad(path, 'Hostinfo.Hostname must be a string');
  return h;
}

export function parseRegisterRequest(body: Buffer): RegisterInput {
  const path = '/machine/register';
  const obj = parseJsonBody(body, path);
  const nodeKeyText = optString(obj, 'NodeKey', path);
  const nodeKey = nodeKeyText === '' ? null : key('node', nodeKeyText, 'NodeKey', path);
  if (nodeKey === null) throw bad(path, 'NodeKey is required');
  const oldText = optString(obj, 'OldNodeKey', path);
  const auth = obj.Auth;
  let authKey: string | null = null;
  if (auth !== undefined && auth !== null) {
    if (typeof auth !== 'object' || Array.isArray(auth)) throw bad(path, 'Auth must be an object');
    const text = optString(auth as Record<string, unknown>, 'AuthKey', path);
    authKey = text === '' ? null : text;
  }
  return {
    version: optNumber(obj, 'Version', path),
    nodeKey,
    oldNodeKey: oldText === '' ? null : key('node', oldText, 'OldNodeKey', path),
    authKey,
    expiry: time(optString(obj, 'Expiry', path), 'Expiry', path),
    followup: optString(obj, 'Followup', path),
    hostinfo: hostinfo(obj.Hostinfo, path) ?? {},
    ephemeral: optBool(obj, 'Ephemeral', path),
  };
}

export function parseMapRequest(body: Buffer): MapInput {
  const path = '/machine/map';
  const obj = parseJsonBody(body, path);
  const nodeKeyText = optString(obj, 'NodeKey', path);
  const nodeKey = nodeKeyText === '' ? null : key('node', nodeKeyText, 'NodeKey', path);
  if (nodeKey === null) throw bad(path, 'NodeKey is required');
  const discoText = optString(obj, 'DiscoKey', path);
  const endpointsValue = obj.Endpoints;
  let endpoints: string[] | null = null;
  if (endpointsValue !== undefined && endpointsValue !== null) {
    if (!Array.isArray(endpointsValue) || endpointsValue.some((e) => typeof e !== 'string')) throw bad(path, 'Endpoints must be a list of strings');
    endpoints = endpointsValue as string[];
  }
  return {
    version: optNumber(obj, 'Version', path),
    nodeKey,
    discoKey: discoText === '' ? null : key('disco', discoText, 'DiscoKey', path),
    stream: optBool(obj, 'Stream', path),
    omitPeers: optBool(obj, 'OmitPeers', path),
    readOnly: optBool(obj, 'ReadOnly', path),
    compress: optString(obj, 'Compress', path),
    hostinfo: hostinfo(obj.Hostinfo, path),
    endpoints,
  };
}
