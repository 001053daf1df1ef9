/**
 * A small seeded PRNG (mulberry32) so simulations are reproducible: the same seed gives
 * the same shuffles, peer picks and packet fates. Not for cryptography.
 */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates in place. */
export function shuffle<T>(xs: T[], rnd: Random): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Up to `k` distinct random elements of `xs` (order random): a partial Fisher–Yates, O(k) swaps. */
export function pick<T>(xs: readonly T[], k: number, rnd: Random): T[] {
  const a = xs.slice();
  const n = Math.min(Math.max(0, k), a.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rnd() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}
