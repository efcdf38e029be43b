import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { decompress } from 'zstd-napi';
import { constantPiece, frameMessage, rawZstdFrame, ZstdEncoder } from './frame.js';

describe('map frames', () => {
  it('builds raw-block frames that zstd decodes, at every size class', () => {
    for (const size of [0, 1, 255, 256, 300, 65535 + 256, 65536 + 256, 131072, 131073, 300000]) {
      const data = Buffer.alloc(size, 0x61);
      for (let i = 0; i < size; i += 7) data[i] = i & 0xff;
      assert.deepEqual(decompress(rawZstdFrame(data)), data, `size ${size}`);
    }
  });

  it('frames a message of concatenated zstd frames behind a little-endian length', () => {
    const encoder = new ZstdEncoder();
    const middle = Buffer.from(JSON.stringify({ NodeID: 7, Endpoints: Array.from({ length: 20 }, (_, i) => `192.0.2.${i}:41641`) }));
    const message = frameMessage([constantPiece('{"PeersChangedPatch":['), encoder.frame(middle), constantPiece(']}')]);
    const length = message.readUInt32LE(0);
    assert.equal(length, message.length - 4);
    const json = JSON.parse(decompress(message.subarray(4)).toString());
    assert.equal(json.PeersChangedPatch[0].NodeID, 7);
  });

  it('is accepted by the reference zstd tool when it is installed', (t) => {
    let hasZstd = true;
    try { execFileSync('zstd', ['--version'], { stdio: 'ignore' }); } catch { hasZstd = false; }
    if (!hasZstd) return t.skip('the zstd command is not installed on this machine');
    const data = Buffer.from('x'.repeat(70000));
    assert.equal(execFileSync('zstd', ['-dc'], { input: rawZstdFrame(data) }).length, data.length);
  });
});
