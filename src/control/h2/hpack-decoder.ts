// HPACK (RFC 7541) header block decoding for the server side of our HTTP/2 connections: the
// integer and string representations, Huffman decoding, the static and dynamic tables and
// dynamic table size updates. Any malformed block is an HpackError, which the connection turns
// into a COMPRESSION_ERROR (the table can no longer be trusted).
import { HUFFMAN_CODES, HUFFMAN_EOS, HUFFMAN_EOS_BITS, HUFFMAN_EOS_CODE, STATIC_TABLE } from './hpack-tables.js';

export class HpackError extends Error {
  override name = 'HpackError';
}

/** RFC 7541 §4.1: an entry's size is its name and value octets plus 32. */
export const ENTRY_OVERHEAD = 32;

/** Larger integers than this never make sense in a header block (lengths, indexes, sizes). */
const MAX_INTEGER = 2 ** 31 - 1;

// The Huffman code as a binary tree: node n's children are at CHILD[2n] (bit 0) and CHILD[2n+1]
// (bit 1); a negative child -1-s is the leaf of symbol s. Built once from the RFC's table.
const HUFFMAN_TREE = buildHuffmanTree();

function buildHuffmanTree(): Int32Array {
  const child = new Int32Array(2 * 512);
  let nodes = 1;
  const add = (symbol: number, code: number, bits: number): void => {
    let node = 0;
    for (let i = bits - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) % 2;
      const slot = 2 * node + bit;
      if (i === 0) {
        child[slot] = -1 - symbol;
        return;
      }
      if (child[slot] === 0) child[slot] = nodes++;
      node = child[slot]!;
    }
  };
  for (let symbol = 0; symbol < 256; symbol++) add(symbol, HUFFMAN_CODES[2 * symbol]!, HUFFMAN_CODES[2 * symbol + 1]!);
  add(HUFFMAN_EOS, HUFFMAN_EOS_CODE, HUFFMAN_EOS_BITS);
  return child;
}

/** Decodes a Huffman-coded string (RFC 7541 §5.2) as latin1 (one char per octet). */
export function decodeHuffman(bytes: Buffer): string {
  const out = Buffer.allocUnsafe(Math.ceil((bytes.length * 8) / 5));
  let length = 0;
  let node = 0;
  // Bits read since the last complete symbol, and whether they were all ones (valid padding).
  let pendingBits = 0;
  let pendingAllOnes = true;
  for (const byte of bytes) {
    for (let shift = 7; shift >= 0; shift--) {
      const bit = (byte >> shift) & 1;
      const next = HUFFMAN_TREE[2 * node + bit]!;
      pendingBits++;
      if (bit === 0) pendingAllOnes = false;
      if (next < 0) {
        const symbol = -1 - next;
        if (symbol === HUFFMAN_EOS) throw new HpackError('Huffman string contains EOS');
        out[length++] = symbol;
        node = 0;
        pendingBits = 0;
        pendingAllOnes = true;
      } else {
        node = next;
      }
    }
  }
  if (pendingBits > 7) throw new HpackError('Huffman padding longer than 7 bits');
  if (!pendingAllOnes) throw new HpackError('Huffman padding is not the EOS prefix');
  return out.toString('latin1', 0, length);
}

export interface DecodedBlock {
  /** Fields in order, [name, value]; cut short once the list passes the size limit. */
  readonly fields: Array<[string, string]>;
  /** RFC 9113 §6.5.2 size of the whole list (names, values, 32 per field). */
  readonly listSize: number;
}

/** One connection's decoding context: the dynamic table lives as long as the connection. */
export class HpackDecoder {
  /** Newest last; HPACK index 62 is the last element. */
  readonly #table: Array<[string, string]> = [];
  #tableSize = 0;
  /** The size the encoder chose with its last size update. */
  #maxSize: number;
  /** SETTINGS_HEADER_TABLE_SIZE we announced: the encoder may not go above it. */
  readonly #settingLimit: number;

  constructor(settingLimit = 4096) {
    this.#settingLimit = settingLimit;
    this.#maxSize = settingLimit;
  }

  get tableSize(): number {
    return this.#tableSize;
  }

  get tableLength(): number {
    return this.#table.length;
  }

  /**
   * Decodes one complete header block. Fields past `maxListSize` are still decoded (the table
   * must stay in step with the encoder) but not kept.
   */
  decode(block: Buffer, maxListSize = Infinity): DecodedBlock {
    const fields: Array<[string, string]> = [];
    let listSize = 0;
    const cursor = { at: 0 };
    let sawField = false;
    while (cursor.at < block.length) {
      const first = block[cursor.at]!;
      let field: [string, string];
      if (first & 0x80) {
        field = this.#lookup(readInteger(block, cursor, 7));
      } else if ((first & 0xc0) === 0x40) {
        field = this.#literal(block, cursor, 6);
        this.#insert(field);
      } else if ((first & 0xe0) === 0x20) {
        // §4.2: size updates come first in a block.
        if (sawField) throw new HpackError('dynamic table size update after a header field');
        const size = readInteger(block, cursor, 5);
        if (size > this.#settingLimit) throw new HpackError(`dynamic table size update to ${size} exceeds the limit of ${this.#settingLimit}`);
        this.#maxSize = size;
        this.#evict(0);
        continue;
      } else {
        // 0000 (without indexing) and 0001 (never indexed) share the 4-bit prefix.
        field = this.#literal(block, cursor, 4);
      }
      sawField = true;
      listSize += field[0].length + field[1].length + ENTRY_OVERHEAD;
      if (listSize <= maxListSize) fields.push(field);
    }
    return { fields, listSize };
  }

  #lookup(index: number): [string, string] {
    if (index === 0) throw new HpackError('header field index 0');
    if (index <= STATIC_TABLE.length) {
      const [name, value] = STATIC_TABLE[index - 1]!;
      return [name, value];
    }
    const at = this.#table.length - (index - STATIC_TABLE.length);
    const entry = this.#table[at];
    if (entry === undefined) throw new HpackError(`header field index ${index} is past the dynamic table (${this.#table.length} entries)`);
    return [entry[0], entry[1]];
  }

  #literal(block: Buffer, cursor: { at: number }, prefixBits: number): [string, string] {
    const nameIndex = readInteger(block, cursor, prefixBits);
    const name = nameIndex === 0 ? readString(block, cursor) : this.#lookup(nameIndex)[0];
    return [name, readString(block, cursor)];
  }

  #insert(field: [string, string]): void {
    const size = field[0].length + field[1].length + ENTRY_OVERHEAD;
    // §4.4: an entry larger than the table empties it and is not added.
    if (size > this.#maxSize) {
      this.#table.length = 0;
      this.#tableSize = 0;
      return;
    }
    this.#evict(size);
    this.#table.push(field);
    this.#tableSize += size;
  }

  /** Evicts oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    let drop = 0;
    while (this.#tableSize + room > this.#maxSize && drop < this.#table.length) {
      const [name, value] = this.#table[drop]!;
      this.#tableSize -= name.length + value.length + ENTRY_OVERHEAD;
      drop++;
    }
    if (drop > 0) this.#table.splice(0, drop);
  }
}

/** RFC 7541 §5.1. */
function readInteger(block: Buffer, cursor: { at: number }, prefixBits: number): number {
  if (cursor.at >= block.length) throw new HpackError('header block ends inside an integer');
  const mask = (1 << prefixBits) - 1;
  let value = block[cursor.at++]! & mask;
  if (value < mask) return value;
  let shift = 0;
  for (;;) {
    if (cursor.at >= block.length) throw new HpackError('header block ends inside an integer');
    const byte = block[cursor.at++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (value > MAX_INTEGER) throw new HpackError('integer too large');
    if ((byte & 0x80) === 0) return value;
    shift += 7;
  }
}

/** RFC 7541 §5.2, as latin1 (header octets map one to one). */
function readString(block: Buffer, cursor: { at: number }): string {
  if (cursor.at >= block.length) throw new HpackError('header block ends before a string');
  const huffman = (block[cursor.at]! & 0x80) !== 0;
  const length = readInteger(block, cursor, 7);
  if (length > block.length - cursor.at) throw new HpackError(`string of ${length} octets runs past the header block`);
  const bytes = block.subarray(cursor.at, cursor.at + length);
  cursor.at += length;
  return huffman ? decodeHuffman(bytes) : bytes.toString('latin1');
}
