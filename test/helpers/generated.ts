/**
 * Repeatable generated input: a seeded generator of strings made of given pieces, so a
 * failing case names the same input on every run.
 */

/** Strings of 0 to `maxPieces` pieces drawn from `pieces`, the same sequence for the same seed. */
export function pieceStrings(pieces: readonly string[], seed: number, maxPieces: number): () => string {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  return () => {
    let s = '';
    for (let j = next(maxPieces + 1); j > 0; j--) s += pieces[next(pieces.length)];
    return s;
  };
}
