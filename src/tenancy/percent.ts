/**
 * Strict percent-decoding shared by the redirect and callback checks.
 *
 * Rules:
 * - `%` must be followed by exactly two hex digits (`strict` mode); a stray `%` is
 *   malformed and the whole input is refused, never passed through half decoded.
 * - The decoded bytes must be well-formed UTF-8 (overlong forms and lone surrogates
 *   refused), so one input has exactly one decoded meaning.
 * - In `lenient` mode a `%` that does not start an escape is kept as a literal
 *   character: used only when peeling further layers off an already decoded string,
 *   where `%` is ordinary text.
 */

const HEX_PAIR = /^[0-9A-Fa-f]{2}$/;
const LONE_SURROGATE = /\p{Cs}/u;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** How a stray `%` (one not followed by two hex digits) is treated. */
export type PercentMode = 'strict' | 'lenient';

/**
 * Decodes `%XX` escapes once, interpreting the bytes as UTF-8.
 *
 * @param input text that may contain percent escapes
 * @param mode `strict` refuses a stray `%`; `lenient` keeps it as a literal `%`
 * @returns the decoded text, or `undefined` when the escapes are malformed or the
 *   bytes are not valid UTF-8
 */
export function percentDecode(input: string, mode: PercentMode = 'strict'): string | undefined {
  if (LONE_SURROGATE.test(input)) return undefined;
  if (!input.includes('%')) return input;
  const bytes: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const ch = input.charCodeAt(i);
    if (ch === 0x25) {
      const pair = input.slice(i + 1, i + 3);
      if (HEX_PAIR.test(pair)) {
        bytes.push(Number.parseInt(pair, 16));
        i += 2;
        continue;
      }
      if (mode === 'strict') return undefined;
      bytes.push(0x25);
      continue;
    }
    // Re-encode the literal character as UTF-8 so escapes and literals are decoded together.
    const cp = input.codePointAt(i) ?? ch;
    if (cp > 0xffff) i++;
    for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b);
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/** True when the text contains a C0 control, DEL or a C1 control character. */
export function hasControlChar(s: string): boolean {
  return /[\u0000-\u001f\u007f-\u009f]/.test(s);
}
