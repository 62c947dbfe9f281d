import t from 'tap';
import { decodeEscapes, parseFixture, readFixture } from './fixture-reader.js';

t.test('escapes decode to the characters they name', async (t) => {
  t.equal(decodeEscapes('/\\\\evil'), '/\\evil');
  t.equal(decodeEscapes('a\\sb\\tc\\nd\\re\\vf\\fg\\0h'), 'a b\tc\nd\re\vf\fg\0h');
  t.equal(decodeEscapes('\\#x'), '#x');
  t.equal(decodeEscapes('\\x2f\\x2F'), '//');
  t.equal(decodeEscapes('\\u002f\\uFF0F'), '/\uff0f');
  t.equal(decodeEscapes('\\u{1f600}\\u{2f}'), '\u{1f600}/');
  t.equal(decodeEscapes('plain/%2f'), 'plain/%2f');
});

t.test('unknown or truncated escapes are errors, not silently kept', async (t) => {
  t.throws(() => decodeEscapes('a\\q'), /unknown escape/);
  t.throws(() => decodeEscapes('a\\'), /dangling/);
  t.throws(() => decodeEscapes('\\x2'), /bad \\x/);
  t.throws(() => decodeEscapes('\\u12'), /bad \\u/);
});

t.test('comments and blank lines are skipped; line numbers are kept', async (t) => {
  const entries = parseFixture('# comment\n\n/a\n\\#b\n', 'f');
  t.same(
    entries.map((e) => [e.line, e.value]),
    [
      [3, '/a'],
      [4, '#b'],
    ],
  );
});

t.test('invisible characters must be written as escapes', async (t) => {
  t.throws(() => parseFixture('/a\tb\n', 'f'), /f:1: literal control/);
  t.throws(() => parseFixture('ok\n/a \n', 'f'), /f:2: literal space/);
  t.throws(() => parseFixture(' /a\n', 'f'), /literal space/);
  t.throws(() => parseFixture('/a\\z\n', 'f'), /f:1: unknown escape/);
});

t.test('every corpus file parses and is not empty', async (t) => {
  for (const name of [
    'open-redirects.txt',
    'safe-redirects.txt',
    'hostile-hosts.txt',
    'hostile-post-logout.txt',
    'hostile-callbacks.txt',
    'hostile-emails.txt',
  ]) {
    t.ok(readFixture(name).length >= 30, `${name} has entries`);
  }
});
