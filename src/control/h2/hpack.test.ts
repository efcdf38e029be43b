// HPACK decoding against RFC 7541 Appendix C (with and without Huffman, the dynamic table
// carried across requests, eviction) and hostile blocks; the encoder's output read back.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HpackDecoder, HpackError, decodeHuffman } from './hpack-decoder.js';
import { encodeResponseHeaders } from './hpack-encoder.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

describe('HPACK decoder', () => {
  it('decodes C.3, requests without Huffman, keeping the dynamic table across them', () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')).fields, [
      [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'],
    ]);
    assert.equal(decoder.tableSize, 57);
    assert.deepEqual(decoder.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865')).fields, [
      [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache'],
    ]);
    assert.equal(decoder.tableSize, 110);
    assert.deepEqual(decoder.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65')).fields, [
      [':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value'],
    ]);
    assert.equal(decoder.tableSize, 164);
    assert.equal(decoder.tableLength, 3);
  });

  it('decodes C.4, the same requests with Huffman', () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')).fields[3], [':authority', 'www.example.com']);
    assert.deepEqual(decoder.decode(hex('8286 84be 5886 a8eb 1064 9cbf')).fields[4], ['cache-control', 'no-cache']);
    assert.deepEqual(decoder.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')).fields[4], ['custom-key', 'custom-value']);
    assert.equal(decoder.tableSize, 164);
  });

  it('decodes C.6, responses with Huffman in a 256-byte table, evicting as it goes', () => {
    const decoder = new HpackDecoder(256);
    // The encoder lowers the table to 256 first (a size update), as the RFC's example assumes.
    const first = decoder.decode(
      Buffer.concat([hex('3fe1 01'), hex('4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3')]),
    );
    assert.deepEqual(first.fields, [
      [':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com'],
    ]);
    assert.equal(decoder.tableSize, 222);
    assert.deepEqual(decoder.decode(hex('4883 640e ffc1 c0bf')).fields[0], [':status', '307']);
    assert.equal(decoder.tableSize, 222);
    const third = decoder.decode(
      hex(
        '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      ),
    );
    assert.deepEqual(third.fields[5], ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1']);
    assert.equal(decoder.tableSize, 215);
    assert.equal(decoder.tableLength, 3);
  });

  it('counts the header list size as RFC 9113 §6.5.2 does and keeps only what fits', () => {
    const decoder = new HpackDecoder();
    const block = hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d');
    const full = decoder.decode(block);
    assert.equal(full.listSize, 7 + 3 + 32 + 7 + 4 + 32 + 5 + 1 + 32 + 10 + 15 + 32);
    const cut = new HpackDecoder().decode(block, 100);
    assert.equal(cut.fields.length, 2);
  });

  it('refuses bad blocks with an HpackError', () => {
    const bad: Array<[string, Buffer]> = [
      ['index 0', hex('80')],
      ['an index past the dynamic table', hex('be')],
      ['a huge index', hex('ff ff ff ff ff 0f')],
      ['a string past the block', hex('0003 6162')],
      ['an integer cut short', hex('ff')],
      ['a size update over the setting', hex('3fe2 1f')],
      ['a size update after a field', hex('82 20')],
      ['Huffman padding of 8 bits', hex('0081 ff 00')],
      ['Huffman padding that is not ones', hex('0081 00 00')],
      ['EOS inside a Huffman string', hex('0084 ff ff ff ff 00')],
    ];
    for (const [what, block] of bad) {
      assert.throws(() => new HpackDecoder().decode(block), HpackError, what);
    }
  });

  it('decodes Huffman strings of every byte value', () => {
    // "www.example.com" from C.4.1, and a short one padded with ones.
    assert.equal(decodeHuffman(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff')), 'www.example.com');
    assert.equal(decodeHuffman(hex('a8eb 1064 9cbf')), 'no-cache');
  });
});

describe('HPACK encoder', () => {
  it('writes :status and headers our decoder (and any) reads back, connection headers dropped', () => {
    const block = encodeResponseHeaders(200, { 'Content-Type': 'application/json', 'x-long': 'v'.repeat(300), connection: 'close', 'set-cookie': ['a=1', 'b=2'] });
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(block).fields, [
      [':status', '200'], ['content-type', 'application/json'], ['x-long', 'v'.repeat(300)], ['set-cookie', 'a=1'], ['set-cookie', 'b=2'],
    ]);
    // Literals without indexing: the client's table is never touched.
    assert.equal(decoder.tableLength, 0);
    assert.deepEqual(new HpackDecoder().decode(encodeResponseHeaders(431, {})).fields, [[':status', '431']]);
  });

  it('refuses names and values HTTP/2 cannot carry', () => {
    assert.throws(() => encodeResponseHeaders(200, { 'bad name': 'x' }));
    assert.throws(() => encodeResponseHeaders(200, { 'x-a': 'line\r\nbreak' }));
    assert.throws(() => encodeResponseHeaders(42, {}));
  });
});
