// Binary search over ascending number arrays (node-id lists kept in order).

/** First index in an ascending list whose value is >= v (the list's length if none). */
export function lowerBound(list: readonly number[], v: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
