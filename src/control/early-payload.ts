// The "early payload" (protocol.md §5, control/ts2021/conn.go): the first plaintext the server
// sends on a new Noise connection, before HTTP/2. Its 9-byte header is shaped so a client
// cannot take it for the 9-byte header of an HTTP/2 frame:
//
//    0              5               9
//   +--------------+---------------+--------------------------------------------+
//   | ff ff ff 'T' 'S' | u32 BE length | JSON {"nodeKeyChallenge":"chalpub:<hex>"} |
//   +--------------+---------------+--------------------------------------------+
//
// Clients since capver 49 accept it (CapVer.EarlyNoise); Headway serves 51 and up, so every
// upgraded connection gets one. The WebSocket variant never does (as Tailscale's server).
import type { ChallengePublicKey } from '../key/index.js';
import type { EarlyNoise } from '../tailcfg/index.js';

export const EARLY_PAYLOAD_MAGIC = Buffer.from([0xff, 0xff, 0xff, 0x54, 0x53]);

export function encodeEarlyPayload(challenge: ChallengePublicKey): Buffer {
  const body: EarlyNoise = { nodeKeyChallenge: challenge };
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const out = Buffer.allocUnsafe(EARLY_PAYLOAD_MAGIC.length + 4 + json.length);
  EARLY_PAYLOAD_MAGIC.copy(out, 0);
  out.writeUInt32BE(json.length, EARLY_PAYLOAD_MAGIC.length);
  json.copy(out, EARLY_PAYLOAD_MAGIC.length + 4);
  return out;
}
