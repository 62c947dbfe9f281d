/**
 * Reads the corpus files under test/fixtures/.
 *
 * File format (UTF-8, one entry per line):
 * - Lines starting with `#` are comments; empty lines are skipped.
 * - Characters that would not survive as plain text are written as escapes:
 *   `\\` backslash, `\s` space, `\t` tab, `\n` line feed, `\r` carriage return,
 *   `\v` vertical tab, `\f` form feed, `\0` NUL, `\#` a literal `#` (needed only at
 *   the start of a line), `\xHH` the character U+00HH, `\uHHHH` one UTF-16 code unit,
 *   `\u{H...}` one code point. Any other backslash sequence is an error.
 * - A literal space or tab at either end of a line, or any literal control character,
 *   is an error: write `\s`, `\t`... so that nothing invisible is lost by an editor.
 */

import { readFileSync } from 'node:fs';

/** One entry of a corpus file. */
export interface FixtureEntry {
  /** 1-based line number in the file. */
  line: number;
  /** The line as written in the file (escapes not decoded). */
  raw: string;
  /** The entry with escapes decoded. */
  value: string;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  s: ' ',
  t: '\t',
  n: '\n',
  r: '\r',
  v: '\v',
  f: '\f',
  '0': '\0',
  '#': '#',
};

/**
 * Decodes the escapes of one fixture line.
 *
 * @throws Error naming the offending position on an unknown or truncated escape
 */
export function decodeEscapes(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = text[i + 1];
    if (next === undefined) throw new Error(`dangling backslash at column ${i + 1}`);
    const simple = SIMPLE_ESCAPES[next];
    if (simple !== undefined) {
      out += simple;
      i += 1;
      continue;
    }
    if (next === 'x') {
      const hex = text.slice(i + 2, i + 4);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new Error(`bad \\x escape at column ${i + 1}`);
      out += String.fromCharCode(Number.parseInt(hex, 16));
      i += 3;
      continue;
    }
    if (next === 'u') {
      const braced = /^\{([0-9A-Fa-f]{1,6})\}/.exec(text.slice(i + 2));
      if (braced?.[1] !== undefined) {
        out += String.fromCodePoint(Number.parseInt(braced[1], 16));
        i += 1 + braced[0].length;
        continue;
      }
      const hex = text.slice(i + 2, i + 6);
      if (!/^[0-9A-Fa-f]{4}$/.test(hex)) throw new Error(`bad \\u escape at column ${i + 1}`);
      out += String.fromCharCode(Number.parseInt(hex, 16));
      i += 5;
      continue;
    }
    throw new Error(`unknown escape \\${next} at column ${i + 1}`);
  }
  return out;
}

/**
 * Parses the text of a corpus file.
 *
 * @param name used in error messages
 */
export function parseFixture(text: string, name = 'fixture'): FixtureEntry[] {
  const entries: FixtureEntry[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw === '' || raw.startsWith('#')) return;
    if (/[\u0000-\u001f\u007f]/.test(raw)) throw new Error(`${name}:${line}: literal control character, use an escape`);
    if (/^[ \t]|[ \t]$/.test(raw)) throw new Error(`${name}:${line}: literal space at an end of the line, use \\s`);
    try {
      entries.push({ line, raw, value: decodeEscapes(raw) });
    } catch (err) {
      throw new Error(`${name}:${line}: ${(err as Error).message}`);
    }
  });
  return entries;
}

/**
 * Reads and parses `test/fixtures/<name>`.
 */
export function readFixture(name: string): FixtureEntry[] {
  const text = readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
  return parseFixture(text, name);
}

/** A readable label for a test assertion: the line as written, and its number. */
export function describeEntry(entry: FixtureEntry): string {
  return `line ${entry.line}: ${escapeNonAscii(entry.raw)}`;
}

/**
 * A value written for a test label: quoted, with every character outside printable
 * ASCII escaped, so that no label can break the TAP stream (U+2028, NEL...).
 */
export function printable(value: string): string {
  return escapeNonAscii(JSON.stringify(value));
}

function escapeNonAscii(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`);
}
