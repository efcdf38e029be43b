// The frame reader cuts any split of the byte stream into the same frames, refuses frames over
// the size limit before reading them, and holds only what has arrived of a split frame.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FrameReader, FrameSizeError, FrameType, frameHeader, headerFrames, type FrameHeader } from './frames.js';

function frames(): Buffer[] {
  return [0, 1, 100, 4096, 16_384].map((length, i) => Buffer.concat([frameHeader(length, FrameType.DATA, i, 2 * i + 1), randomBytes(length)]));
}

function read(reader: FrameReader, wire: Buffer, cut: (at: number) => number): Array<{ header: FrameHeader; payload: Buffer }> {
  const out: Array<{ header: FrameHeader; payload: Buffer }> = [];
  for (let at = 0; at < wire.length; ) {
    const n = cut(at);
    reader.push(wire.subarray(at, at + n), (header, payload) => (out.push({ header, payload: Buffer.from(payload) }), true));
    at += n;
  }
  return out;
}

describe('FrameReader', () => {
  it('reads the same frames whole, byte by byte, and in uneven pieces', () => {
    const sent = frames();
    const wire = Buffer.concat(sent);
    for (const cut of [() => wire.length, () => 1, (at: number) => 1 + (at % 7) * 1000]) {
      const got = read(new FrameReader(), wire, cut);
      assert.equal(got.length, sent.length);
      got.forEach(({ header, payload }, i) => {
        assert.deepEqual(header, { length: sent[i]!.length - 9, type: FrameType.DATA, flags: i, streamId: 2 * i + 1 });
        assert.ok(payload.equals(sent[i]!.subarray(9)));
      });
    }
  });

  it('counts as pending only the bytes of a split frame that arrived', () => {
    const reader = new FrameReader();
    reader.push(Buffer.concat([frameHeader(16_384, FrameType.DATA, 0, 1), Buffer.alloc(3)]), () => true);
    assert.equal(reader.pendingBytes, 3);
  });

  it('refuses a frame over the limit from its header alone', () => {
    assert.throws(() => new FrameReader().push(frameHeader(16_385, FrameType.DATA, 0, 1), () => true), FrameSizeError);
  });

  it('splits a large header block into HEADERS and CONTINUATION of at most 16,384 bytes', () => {
    const parts = headerFrames(5, Buffer.alloc(40_000, 1), true);
    const got = read(new FrameReader(), Buffer.concat(parts), () => 1000);
    assert.deepEqual(got.map((f) => [f.header.type, f.header.flags, f.header.length]), [
      [FrameType.HEADERS, 0x1, 16_384],
      [FrameType.CONTINUATION, 0, 16_384],
      [FrameType.CONTINUATION, 0x4, 7_232],
    ]);
  });
});
