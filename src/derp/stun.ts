/**
 * @module derp/stun
 * The STUN subset Tailscale's netcheck uses (RFC 5389 Binding), and a UDP server that answers
 * it. Checked against tailscale/tailscale net/stun/stun.go and net/stunserver/stunserver.go
 * @de9ec7ee:
 *
 * - Tailscale's server answers only requests that carry SOFTWARE = "tailnode" and end in a
 *   correct FINGERPRINT (as every Tailscale client sends). We do the same by default;
 *   `requireTailscaleSoftware: false` answers any well-formed Binding request instead.
 * - The answer carries exactly one attribute, XOR-MAPPED-ADDRESS: no SOFTWARE, no FINGERPRINT.
 * - Anything else is dropped silently and counted.
 *
 * Request as a Tailscale client sends it (40 bytes):
 *
 *     0       2       4               8                      20
 *     | 00 01 | 00 14 | 21 12 A4 42   | transaction id (12)  |
 *     | 80 22 | 00 08 | "tailnode" (8)                        |   SOFTWARE
 *     | 80 28 | 00 04 | CRC-32(bytes 0..31) ^ 0x5354554E      |   FINGERPRINT
 *
 * Response (32 bytes for IPv4, 44 for IPv6):
 *
 *     | 01 01 | 00 0C or 00 18 | 21 12 A4 42 | transaction id (12) |
 *     | 00 20 | 00 08 or 00 14 | 00 | family 01/02 | port ^ 0x2112 |
 *     | address XOR (magic cookie, then the transaction id for IPv6) (4 or 16) |
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { silentLogger } from '../log/index.js';
import { formatIP, parseIP } from '../util/ip.js';
import { derpError } from './errors.js';

const HEADER_BYTES = 20;
const MAGIC_COOKIE = Buffer.from([0x21, 0x12, 0xa4, 0x42]);
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const ATTR_SOFTWARE = 0x8022;
const ATTR_FINGERPRINT = 0x8028;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
const SOFTWARE = Buffer.from('tailnode', 'latin1');
const FINGERPRINT_XOR = 0x5354554e;
const FINGERPRINT_ATTR_BYTES = 8;

export const DEFAULT_STUN_PORT = 3478;

/** Why a datagram got no answer. */
export type StunDropReason =
  /** Shorter than 20 bytes, top bits set, or no magic cookie. */
  | 'not_stun'
  /** A STUN message that is not a Binding request. */
  | 'not_binding_request'
  /** An attribute runs past the end of the message. */
  | 'malformed_attributes'
  /** No SOFTWARE "tailnode" (strict mode only). */
  | 'wrong_software'
  /** The last attribute is not FINGERPRINT (strict mode only). */
  | 'no_fingerprint'
  /** FINGERPRINT present but wrong. */
  | 'bad_fingerprint';

export type StunParseResult = { readonly ok: true; readonly transactionId: Buffer } | { readonly ok: false; readonly reason: StunDropReason };

/** CRC-32 (IEEE) table, for the FINGERPRINT attribute. */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function fingerprintOf(bytes: Uint8Array): number {
  return (crc32(bytes) ^ FINGERPRINT_XOR) >>> 0;
}

/** A Binding request as Tailscale clients send it (SOFTWARE "tailnode" + FINGERPRINT). */
export function stunBindingRequest(transactionId: Uint8Array): Buffer {
  if (transactionId.length !== 12) throw new RangeError(`STUN transaction id: want 12 bytes, got ${transactionId.length}`);
  const b = Buffer.alloc(HEADER_BYTES + 4 + SOFTWARE.length + FINGERPRINT_ATTR_BYTES);
  b.writeUInt16BE(BINDING_REQUEST, 0);
  b.writeUInt16BE(b.length - HEADER_BYTES, 2);
  MAGIC_COOKIE.copy(b, 4);
  b.set(transactionId, 8);
  b.writeUInt16BE(ATTR_SOFTWARE, 20);
  b.writeUInt16BE(SOFTWARE.length, 22);
  SOFTWARE.copy(b, 24);
  const fpAt = 24 + SOFTWARE.length;
  b.writeUInt16BE(ATTR_FINGERPRINT, fpAt);
  b.writeUInt16BE(4, fpAt + 2);
  b.writeUInt32BE(fingerprintOf(b.subarray(0, fpAt)), fpAt + 4);
  return b;
}

/** True for anything shaped like a STUN message (length, top bits, cookie). */
export function isStun(b: Uint8Array): boolean {
  return b.length >= HEADER_BYTES && (b[0]! & 0xc0) === 0 && b[4] === 0x21 && b[5] === 0x12 && b[6] === 0xa4 && b[7] === 0x42;
}

export function parseBindingRequest(b: Buffer, options: { requireTailscaleSoftware?: boolean } = {}): StunParseResult {
  const strict = options.requireTailscaleSoftware ?? true;
  if (!isStun(b)) return { ok: false, reason: 'not_stun' };
  if (b.readUInt16BE(0) !== BINDING_REQUEST) return { ok: false, reason: 'not_binding_request' };
  let softwareOk = false;
  let lastAttr = -1;
  let fingerprint: number | null = null;
  let fingerprintAt = -1;
  let at = HEADER_BYTES;
  while (at < b.length) {
    if (b.length - at < 4) return { ok: false, reason: 'malformed_attributes' };
    const type = b.readUInt16BE(at);
    const length = b.readUInt16BE(at + 2);
    const padded = (length + 3) & ~3;
    if (at + 4 + padded > b.length) return { ok: false, reason: 'malformed_attributes' };
    const value = b.subarray(at + 4, at + 4 + length);
    lastAttr = type;
    if (type === ATTR_SOFTWARE && value.equals(SOFTWARE)) softwareOk = true;
    if (type === ATTR_FINGERPRINT && length === 4) {
      fingerprint = value.readUInt32BE(0);
      fingerprintAt = at;
    }
    at += 4 + padded;
  }
  if (strict && !softwareOk) return { ok: false, reason: 'wrong_software' };
  if (strict && lastAttr !== ATTR_FINGERPRINT) return { ok: false, reason: 'no_fingerprint' };
  if (fingerprint !== null) {
    // Tailscale computes it over everything before the final 8-byte attribute.
    const want = fingerprintOf(b.subarray(0, fingerprintAt));
    if (fingerprint !== want) return { ok: false, reason: 'bad_fingerprint' };
  }
  return { ok: true, transactionId: Buffer.from(b.subarray(8, 20)) };
}

/**
 * The Binding success response for `address:port`. An IPv4-mapped IPv6 address (what a
 * dual-stack socket reports for an IPv4 sender) is answered as IPv4.
 */
export function stunBindingResponse(transactionId: Uint8Array, address: string, port: number): Buffer {
  const { family, raw } = addressBytes(address);
  const attrLength = 4 + raw.length;
  const b = Buffer.alloc(HEADER_BYTES + 4 + attrLength);
  b.writeUInt16BE(BINDING_SUCCESS, 0);
  b.writeUInt16BE(4 + attrLength, 2);
  MAGIC_COOKIE.copy(b, 4);
  b.set(transactionId, 8);
  b.writeUInt16BE(ATTR_XOR_MAPPED_ADDRESS, 20);
  b.writeUInt16BE(attrLength, 22);
  b[24] = 0;
  b[25] = family;
  b.writeUInt16BE((port ^ 0x2112) & 0xffff, 26);
  for (let i = 0; i < raw.length; i++) {
    b[28 + i] = raw[i]! ^ (i < 4 ? MAGIC_COOKIE[i]! : transactionId[i - 4]!);
  }
  return b;
}

/** Parses our own (or any) Binding response's XOR-MAPPED-ADDRESS; for tests and probes. */
export function parseBindingResponse(b: Buffer): { transactionId: Buffer; address: string; port: number } | null {
  if (!isStun(b) || b.readUInt16BE(0) !== BINDING_SUCCESS) return null;
  const transactionId = Buffer.from(b.subarray(8, 20));
  const end = Math.min(b.length, HEADER_BYTES + b.readUInt16BE(2));
  let at = HEADER_BYTES;
  while (at + 4 <= end) {
    const type = b.readUInt16BE(at);
    const length = b.readUInt16BE(at + 2);
    const value = b.subarray(at + 4, at + 4 + length);
    if ((type === ATTR_XOR_MAPPED_ADDRESS || type === 0x8020) && value.length >= 8) {
      const family = value[1];
      const port = value.readUInt16BE(2) ^ 0x2112;
      const size = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
      if (size === 0 || value.length < 4 + size) return null;
      const raw = Buffer.alloc(size);
      for (let i = 0; i < size; i++) raw[i] = value[4 + i]! ^ (i < 4 ? MAGIC_COOKIE[i]! : transactionId[i - 4]!);
      return { transactionId, address: formatIP({ family: size === 4 ? 4 : 6, value: bytesBigint(raw) }), port };
    }
    at += 4 + ((length + 3) & ~3);
  }
  return null;
}

export interface StunServerOptions {
  /** `host:port`, `[v6]:port` or `:port` (all interfaces, both families). Port 0 picks one. */
  readonly listenAddr: string;
  /** Default true: answer only Tailscale clients, as Tailscale's server does. */
  readonly requireTailscaleSoftware?: boolean;
  readonly logger?: Logger;
  readonly metrics?: Registry;
}

export interface StunServer {
  /** The bound address (after port 0 is resolved). */
  address(): { readonly address: string; readonly family: 'IPv4' | 'IPv6'; readonly port: number };
  readonly stats: StunStats;
  close(): Promise<void>;
}

export interface StunStats {
  answered: number;
  answeredIPv4: number;
  answeredIPv6: number;
  writeErrors: number;
  readonly dropped: Record<StunDropReason, number>;
}

/** Splits a listen address; ':3478' and '[::]:3478' mean every interface of both families. */
export function parseListenAddr(listenAddr: string, defaultPort = DEFAULT_STUN_PORT): { host: string; port: number } {
  const text = listenAddr.trim();
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]+)\](?::(\d*))?$/.exec(text);
  if (bracket !== null) {
    host = bracket[1]!;
    portText = bracket[2] ?? '';
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0 && text.indexOf(':') === colon) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    } else if (colon < 0) {
      host = text;
      portText = '';
    } else {
      throw derpError('badListenAddr', `stun_listen_addr: ${JSON.stringify(listenAddr)} is ambiguous (write an IPv6 host as [addr]:port)`);
    }
  }
  const port = portText === '' ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw derpError('badListenAddr', `stun_listen_addr: ${JSON.stringify(listenAddr)}: port ${JSON.stringify(portText)} is not 0-65535`);
  }
  if (host !== '' && !isIPv4(host) && !isIPv6(host) && host !== 'localhost') {
    throw derpError('badListenAddr', `stun_listen_addr: ${JSON.stringify(listenAddr)}: host must be an IP address, "localhost" or empty`);
  }
  return { host, port };
}

/** Binds a UDP socket and answers Binding requests until closed. */
export async function startStunServer(options: StunServerOptions): Promise<StunServer> {
  const { host, port } = parseListenAddr(options.listenAddr);
  const logger = (options.logger ?? silentLogger()).child({ part: 'derp', service: 'stun' });
  const strict = options.requireTailscaleSoftware ?? true;
  const stats: StunStats = {
    answered: 0,
    answeredIPv4: 0,
    answeredIPv6: 0,
    writeErrors: 0,
    dropped: { not_stun: 0, not_binding_request: 0, malformed_attributes: 0, wrong_software: 0, no_fingerprint: 0, bad_fingerprint: 0 },
  };
  if (options.metrics !== undefined) registerStunMetrics(options.metrics, stats);

  // An empty host or "::" gets one dual-stack socket; IPv4 senders then appear as ::ffff:a.b.c.d.
  const bindHost = host === '' ? '::' : host === 'localhost' ? '127.0.0.1' : host;
  let socket: UdpSocket;
  try {
    socket = await bind(isIPv4(bindHost) ? 'udp4' : 'udp6', bindHost, port);
  } catch (err) {
    if (host !== '') throw derpError('stunListen', `stun_listen_addr ${options.listenAddr}: cannot bind UDP: ${(err as Error).message}`, { cause: err });
    // A host without IPv6: fall back to IPv4 only.
    try {
      socket = await bind('udp4', '0.0.0.0', port);
    } catch (err4) {
      throw derpError('stunListen', `stun_listen_addr ${options.listenAddr}: cannot bind UDP: ${(err4 as Error).message}`, { cause: err4 });
    }
  }

  socket.on('message', (message, rinfo) => {
    const parsed = parseBindingRequest(message, { requireTailscaleSoftware: strict });
    if (!parsed.ok) {
      stats.dropped[parsed.reason]++;
      return;
    }
    let response: Buffer;
    try {
      response = stunBindingResponse(parsed.transactionId, rinfo.address, rinfo.port);
    } catch (err) {
      // Only an address the OS reports in a form we cannot parse gets here; never crash on it.
      logger.debug({ err, remote: rinfo.address }, 'stun: cannot encode sender address');
      stats.writeErrors++;
      return;
    }
    if (response[25] === 0x01) stats.answeredIPv4++;
    else stats.answeredIPv6++;
    socket.send(response, rinfo.port, rinfo.address, (err) => {
      if (err) stats.writeErrors++;
      else stats.answered++;
    });
  });
  socket.on('error', (err) => {
    logger.warn({ err }, 'stun socket error');
  });
  const bound = socket.address();
  logger.info({ listen: `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` }, 'stun server listening');

  return {
    address: () => {
      const a = socket.address();
      return { address: a.address, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', port: a.port };
    },
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        socket.close(() => resolve());
      }),
  };
}

function bind(type: 'udp4' | 'udp6', host: string, port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type, ipv6Only: false });
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

function registerStunMetrics(registry: Registry, stats: StunStats): void {
  new Counter({
    name: 'headway_derp_stun_requests_total',
    help: 'STUN datagrams received, by disposition (success, write_error, or the reason it was dropped).',
    labelNames: ['disposition'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ disposition: 'success' }, stats.answered);
      this.inc({ disposition: 'write_error' }, stats.writeErrors);
      for (const [reason, count] of Object.entries(stats.dropped)) this.inc({ disposition: reason }, count);
    },
  });
  new Counter({
    name: 'headway_derp_stun_answers_total',
    help: 'STUN Binding responses sent, by address family of the client.',
    labelNames: ['family'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ family: 'ipv4' }, stats.answeredIPv4);
      this.inc({ family: 'ipv6' }, stats.answeredIPv6);
    },
  });
}

/** The 4 or 16 address bytes of `address`; IPv4-mapped IPv6 becomes IPv4 (family 1). */
function addressBytes(address: string): { family: 0x01 | 0x02; raw: Buffer } {
  const zone = address.indexOf('%');
  const ip = parseIP(zone >= 0 ? address.slice(0, zone) : address);
  if (ip.family === 4) return { family: 0x01, raw: bigintBytes(ip.value, 4) };
  if (ip.value >> 32n === 0xffffn) return { family: 0x01, raw: bigintBytes(ip.value & 0xffffffffn, 4) };
  return { family: 0x02, raw: bigintBytes(ip.value, 16) };
}

function bigintBytes(value: bigint, size: number): Buffer {
  const out = Buffer.alloc(size);
  let v = value;
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function bytesBigint(raw: Uint8Array): bigint {
  let v = 0n;
  for (const byte of raw) v = (v << 8n) | BigInt(byte);
  return v;
}
