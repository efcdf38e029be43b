// The client's map-stream reader against messages built here from protocol.md §9.2: 4-byte
// little-endian lengths, zstd frames from zstd-napi and hand-built raw-block frames, several
// frames per message cut at arbitrary byte offsets, and every way to deliver the bytes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compress } from 'zstd-napi';
import { HeadwayError } from '../util/headway-error.js';
import { MapFrameDecoder, decodeMapMessage } from './index.js';

/** A zstd frame with raw (uncompressed) blocks, as the spec's 20-line encoder describes it. */
function rawBlockFrame(content: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd])];
  if (content.length < 256) parts.push(Buffer.from([0x20, content.length]));
  else if (content.length < 65792) {
    const fcs = Buffer.alloc(3);
    fcs[0] = 0x60;
    fcs.writeUInt16LE(content.length - 256, 1);
    parts.push(fcs);
  } else {
    const fcs = Buffer.alloc(5);
    fcs[0] = 0xa0;
    fcs.writeUInt32LE(content.length, 1);
    parts.push(fcs);
  }
  const maxBlock = 131072;
  let offset = 0;
  do {
    const block = content.subarray(offset, offset + maxBlock);
    offset += block.length;
    const last = offset >= content.length ? 1 : 0;
    const header = (block.length << 3) | (0 << 1) | last;
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff]), block);
  } while (offset < content.length);
  return Buffer.concat(parts);
}

function message(payload: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(payload.length);
  return Buffer.concat([length, payload]);
}

function cutAt(json: Buffer, offsets: number[]): Buffer[] {
  const bounds = [0, ...offsets, json.length];
  return bounds.slice(1).map((end, i) => json.subarray(bounds[i], end));
}

function decodeAll(wire: Buffer, chunkSize: number): unknown[] {
  const decoder = new MapFrameDecoder();
  const out: unknown[] = [];
  for (let offset = 0; offset < wire.length; offset += chunkSize) {
    for (const payload of decoder.push(wire.subarray(offset, offset + chunkSize))) out.push(decodeMapMessage(payload, out.length, true));
  }
  assert.ok(decoder.atBoundary);
  return out;
}

const mapResponse = { Node: { ID: 1, Name: 'a.example.ts.net.' }, Peers: [{ ID: 2, Key: `nodekey:${'ab'.repeat(32)}` }], Domain: 'example.com' };
const json = Buffer.from(JSON.stringify(mapResponse));

describe('MapFrameDecoder', () => {
  const encodings: Array<{ name: string; payload: Buffer }> = [
    { name: 'one compressed frame', payload: compress(json) },
    { name: 'one raw-block frame', payload: rawBlockFrame(json) },
    { name: 'three raw-block frames cut mid-token', payload: Buffer.concat(cutAt(json, [5, 33]).map(rawBlockFrame)) },
    { name: 'compressed + raw + compressed frames', payload: Buffer.concat(cutAt(json, [17, 18]).map((part, i) => (i === 1 ? rawBlockFrame(part) : compress(part)))) },
    { name: 'a frame with a content checksum', payload: compress(json, { checksumFlag: true, compressionLevel: 19 }) },
    { name: 'a frame with an empty raw frame before it', payload: Buffer.concat([rawBlockFrame(Buffer.alloc(0)), compress(json)]) },
  ];
  for (const encoding of encodings) {
    for (const chunkSize of [1, 3, 4096]) {
      it(`decodes ${encoding.name} delivered in ${chunkSize}-byte chunks`, () => {
        assert.deepEqual(decodeAll(message(encoding.payload), chunkSize), [mapResponse]);
      });
    }
  }

  it('decodes several messages from one chunk, and a raw message of 3 blocks (300 KB)', () => {
    const big = Buffer.from(JSON.stringify({ DNSConfig: { Domains: Array.from({ length: 20_000 }, (_, i) => `name-${i}.example`) } }));
    assert.ok(big.length > 2 * 131072);
    const wire = Buffer.concat([message(compress(json)), message(rawBlockFrame(big)), message(compress(Buffer.from('{"KeepAlive":true}')))]);
    const out = decodeAll(wire, wire.length);
    assert.equal(out.length, 3);
    assert.deepEqual(out[0], mapResponse);
    assert.equal((out[1] as { DNSConfig: { Domains: string[] } }).DNSConfig.Domains.length, 20_000);
    assert.deepEqual(out[2], { KeepAlive: true });
  });

  it('reads the length little-endian: a big-endian prefix is misread', () => {
    const payload = rawBlockFrame(Buffer.from(JSON.stringify({ pad: 'x'.repeat(300) })));
    const bigEndian = Buffer.alloc(4);
    bigEndian.writeUInt32BE(payload.length);
    // 00 00 01 40 read little-endian is 0x40010000: about 1 GiB, refused.
    assert.throws(() => new MapFrameDecoder().push(Buffer.concat([bigEndian, payload])), /length 1073807360 exceeds/);
    assert.equal(decodeAll(message(payload), 7).length, 1);
  });

  it('rejects an empty message, an oversized length, bad zstd and bad JSON, naming the message', () => {
    assert.throws(() => new MapFrameDecoder().push(Buffer.alloc(4)), (err: unknown) => err instanceof HeadwayError && err.code === 'HW_CLIENT_BAD_MAP_FRAME' && /message 0: length 0/.test(err.message));
    assert.throws(() => new MapFrameDecoder(1000).push(message(Buffer.alloc(1001))), (err: unknown) => err instanceof HeadwayError && /exceeds 1000/.test(err.message));
    assert.throws(() => decodeMapMessage(Buffer.from('not zstd at all'), 4, true), (err: unknown) => err instanceof HeadwayError && /map message 4: zstd/.test(err.message));
    assert.throws(() => decodeMapMessage(rawBlockFrame(Buffer.from('{"cut')), 5, true), (err: unknown) => err instanceof HeadwayError && /map message 5: 5 bytes are not JSON/.test(err.message));
  });

  it('reads uncompressed JSON messages when zstd was not asked for', () => {
    const decoder = new MapFrameDecoder();
    const [payload] = decoder.push(message(json));
    assert.ok(payload);
    assert.deepEqual(decodeMapMessage(payload, 0, false), mapResponse);
  });
});
