import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SharedDecodeCache } from './map-stream.js';

describe('SharedDecodeCache', () => {
  it('decodes equal payloads once and hands out the same message', () => {
    const cache = new SharedDecodeCache(2);
    let decodes = 0;
    const decode = (n: number) => () => {
      decodes++;
      return { KeepAlive: n === 0 };
    };
    const a = cache.decode(Buffer.from('frame-a'), decode(0));
    const again = cache.decode(Buffer.from('frame-a'), decode(0));
    assert.equal(again, a);
    assert.equal(decodes, 1);
    assert.equal(cache.hits, 1);
    cache.decode(Buffer.from('frame-b'), decode(1));
    cache.decode(Buffer.from('frame-c'), decode(2));
    cache.decode(Buffer.from('frame-a'), decode(0));
    assert.equal(decodes, 4, 'the oldest payload was dropped past the capacity');
  });
});
