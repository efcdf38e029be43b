// Bit sets over identity-class ids: visibility rows and selector resolutions are unions and
// tests over a few hundred or thousand classes, which 32-bit words do cheaply. They grow when
// a class is added after the build; bits past the end read as clear.

export class Bits {
  words: Uint32Array;

  constructor(size: number) {
    this.words = new Uint32Array((size + 31) >>> 5);
  }

  #grow(wordCount: number): void {
    const words = new Uint32Array(Math.max(wordCount, this.words.length * 2));
    words.set(this.words);
    this.words = words;
  }

  set(i: number): void {
    const w = i >>> 5;
    if (w >= this.words.length) this.#grow(w + 1);
    this.words[w]! |= 1 << (i & 31);
  }

  clear(i: number): void {
    const w = i >>> 5;
    if (w < this.words.length) this.words[w]! &= ~(1 << (i & 31));
  }

  has(i: number): boolean {
    const w = i >>> 5;
    return w < this.words.length && (this.words[w]! & (1 << (i & 31))) !== 0;
  }

  or(other: Bits): void {
    const b = other.words;
    if (b.length > this.words.length) this.#grow(b.length);
    const a = this.words;
    for (let i = 0; i < b.length; i++) a[i]! |= b[i]!;
  }

  isEmpty(): boolean {
    for (const w of this.words) if (w !== 0) return false;
    return true;
  }

  intersects(other: Bits): boolean {
    const a = this.words;
    const b = other.words;
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if ((a[i]! & b[i]!) !== 0) return true;
    return false;
  }

  *[Symbol.iterator](): IterableIterator<number> {
    const w = this.words;
    for (let i = 0; i < w.length; i++) {
      let word = w[i]!;
      while (word !== 0) {
        const bit = 31 - Math.clz32(word & -word);
        yield (i << 5) + bit;
        word &= word - 1;
      }
    }
  }

  clone(): Bits {
    const b = new Bits(0);
    (b as { words: Uint32Array }).words = this.words.slice();
    return b;
  }
}
