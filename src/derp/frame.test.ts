import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { FrameReader, FrameRejectedError, FrameType, encodeFrame, looksLikeDisco, type FrameDecision } from './frame.js';

function readAll(reader: FrameReader, chunks: Buffer[]): Buffer[] {
  const frames: Buffer[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let f = reader.next(); f !== null; f = reader.next()) frames.push(Buffer.from(f));
  }
  return frames;
}

const readEverything = (): FrameDecision => 'read';

describe('FrameReader', () => {
  const stream = Buffer.concat([
    encodeFrame(FrameType.SendPacket, randomBytes(40)),
    encodeFrame(FrameType.KeepAlive),
    encodeFrame(FrameType.Ping, randomBytes(8)),
    encodeFrame(FrameType.SendPacket, randomBytes(3000)),
  ]);
  const want = [45, 5, 13, 3005];

  it('returns the same frames for every way of cutting the stream in two', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const frames = readAll(new FrameReader(readEverything), [stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(
        frames.map((f) => f.length),
        want,
        `cut at ${cut}`,
      );
      assert.ok(Buffer.concat(frames).equals(stream), `cut at ${cut}`);
    }
  });

  it('returns the same frames when fed one byte at a time', () => {
    const bytes = [...stream].map((b) => Buffer.from([b]));
    const frames = readAll(new FrameReader(readEverything), bytes);
    assert.ok(Buffer.concat(frames).equals(stream));
  });

  it('returns a frame inside one chunk as a view of that chunk, header included', () => {
    const reader = new FrameReader(readEverything);
    reader.push(stream);
    const first = reader.next()!;
    assert.equal(first.buffer, stream.buffer);
    assert.equal(first[0], FrameType.SendPacket);
    assert.equal(first.readUInt32BE(1), 40);
  });

  it('skips a payload it was told to skip, even across chunks, and counts it', () => {
    const skipped = encodeFrame(0x7f, randomBytes(5000));
    const kept = encodeFrame(FrameType.Ping, Buffer.from('12345678'));
    const reader = new FrameReader((type) => (type === 0x7f ? 'skip' : 'read'));
    const all = Buffer.concat([skipped, kept]);
    const frames = readAll(reader, [all.subarray(0, 7), all.subarray(7, 4000), all.subarray(4000)]);
    assert.equal(frames.length, 1);
    assert.ok(frames[0]!.equals(kept));
    assert.equal(reader.framesSkipped, 1);
  });

  it('throws the decision reason for a rejected header before reading its payload', () => {
    const reader = new FrameReader((_type, length) => (length > 10 ? { reject: 'frame_too_large', detail: `len ${length}` } : 'read'));
    const header = Buffer.from([FrameType.SendPacket, 0xff, 0xff, 0xff, 0xff]);
    reader.push(header);
    assert.throws(() => reader.next(), (err: unknown) => err instanceof FrameRejectedError && err.reason === 'frame_too_large');
  });

  it('reports a half-read frame as mid-frame', () => {
    const reader = new FrameReader(readEverything);
    reader.push(encodeFrame(FrameType.SendPacket, randomBytes(40)).subarray(0, 20));
    assert.equal(reader.next(), null);
    assert.equal(reader.midFrame, true);
    const idle = new FrameReader(readEverything);
    idle.push(encodeFrame(FrameType.KeepAlive));
    assert.notEqual(idle.next(), null);
    assert.equal(idle.midFrame, false);
  });
});

describe('looksLikeDisco', () => {
  it('needs the magic and room for a key and a nonce', () => {
    const magic = Buffer.from([0x54, 0x53, 0xf0, 0x9f, 0x92, 0xac]);
    assert.equal(looksLikeDisco(Buffer.concat([magic, randomBytes(56)])), true);
    assert.equal(looksLikeDisco(Buffer.concat([magic, randomBytes(55)])), false);
    assert.equal(looksLikeDisco(randomBytes(100).fill(0)), false);
  });
});
