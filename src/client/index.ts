/**
 * @module client
 * Owns our TS2021 protocol client, used as a black box by tests, the load benchmark and
 * `headway debug`: /key, the /ts2021 upgrade on a raw socket, the Noise initiator, the early
 * payload, HTTP/2 over Noise, JSON requests and the /machine/map stream reader (4-byte LE
 * lengths, concatenated zstd frames). The upgrade parsing, early-payload reading and map-frame
 * decoding are written apart from the server's code so one shared mistake cannot hide.
 * (The DERP client lives in client/derp/ and has its own door.)
 * May import: noise, tailcfg, key, util. Must never: import control, server or any server-side
 * part, or share framing code with them.
 * This file is the part's only door.
 */
export { ClientErrors } from './errors.js';
export { fetchServerKey, type FetchServerKeyOptions } from './server-key.js';
export { parseServerUrl, type ServerAddress } from './server-url.js';
export { ControlClient, dialNoise, type DialOptions, type NoiseDial, type JsonResponse, type RequestOptions } from './control-client.js';
export { MapStream, SharedDecodeCache, type MapStreamOptions, type MapStreamStats } from './map-stream.js';
export { MapFrameDecoder, decodeMapMessage, DEFAULT_MAX_MAP_MESSAGE_BYTES } from './map-frame-decoder.js';
export { buildUpgradeRequest, parseResponseHead, upgradeHeadProblem, type ResponseHead } from './http-upgrade.js';
export { Netmap } from './netmap.js';
export { NodeClient, type NodeClientOptions } from './node-client.js';
