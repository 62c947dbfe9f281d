/**
 * Bounded memory of a pure string function's answers, for values that repeat on
 * almost every request (Host headers, email domains): when full, it starts over.
 */

/**
 * `fn` with its answers remembered for up to `max` distinct inputs.
 *
 * @param fn a pure function of its input
 * @param max most inputs remembered at once
 */
export function remembered<T>(fn: (input: string) => T, max: number): (input: string) => T {
  const answers = new Map<string, T>();
  return (input) => {
    const known = answers.get(input);
    if (known !== undefined || answers.has(input)) return known as T;
    const answer = fn(input);
    if (answers.size >= max) answers.clear();
    answers.set(input, answer);
    return answer;
  };
}
