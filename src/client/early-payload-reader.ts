// Reads the optional early payload the server may send before HTTP/2 (protocol.md §5), the way
// tailscaled does: the first 9 plaintext bytes are either `ff ff ff 'T' 'S'` + u32 BE length
// (then that much JSON), or the 9-byte header of the server's first HTTP/2 frame, which goes
// back to the stream untouched. Written apart from the server's encoder on purpose.
import type { EarlyNoise } from '../tailcfg/index.js';
import { parsePublicKey } from '../key/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { ClientErrors } from './errors.js';
import type { StreamReader } from './stream-reader.js';

const FIRST_READ_BYTES = 9;
const MAX_EARLY_PAYLOAD_BYTES = 10 << 20;

function isMagic(bytes: Buffer): boolean {
  return bytes[0] === 0xff && bytes[1] === 0xff && bytes[2] === 0xff && bytes[3] === 0x54 && bytes[4] === 0x53;
}

/**
 * Consumes the early payload from `reader` if there is one. Without one, nothing is consumed
 * (the 9 bytes stay buffered for HTTP/2).
 */
export async function readEarlyPayload(reader: StreamReader, where: string): Promise<EarlyNoise | null> {
  const fail = (what: string, cause?: unknown): HeadwayError =>
    new HeadwayError(ClientErrors.BAD_EARLY_PAYLOAD, `client: ${where}: early payload: ${what}`, cause === undefined ? undefined : { cause });
  try {
    await reader.need(FIRST_READ_BYTES, 'the first 9 bytes after the handshake');
  } catch (err) {
    throw fail(err instanceof Error ? err.message : String(err), err);
  }
  const first = reader.buffered.subarray(0, FIRST_READ_BYTES);
  if (!isMagic(first)) return null;
  const length = first.readUInt32BE(5);
  if (length > MAX_EARLY_PAYLOAD_BYTES) throw fail(`length ${length} exceeds ${MAX_EARLY_PAYLOAD_BYTES}`);
  try {
    await reader.need(FIRST_READ_BYTES + length, 'the early payload JSON');
  } catch (err) {
    throw fail(err instanceof Error ? err.message : String(err), err);
  }
  reader.take(FIRST_READ_BYTES);
  const json = reader.take(length).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw fail('not JSON', err);
  }
  const challenge = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)['nodeKeyChallenge'] : undefined;
  if (typeof challenge !== 'string') throw fail('no string "nodeKeyChallenge"');
  try {
    parsePublicKey('challenge', challenge);
  } catch (err) {
    throw fail(`"nodeKeyChallenge" is not a chalpub: key`, err);
  }
  return { nodeKeyChallenge: challenge };
}
