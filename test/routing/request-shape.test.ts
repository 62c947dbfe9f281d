import t from 'tap';
import { readCookie } from '../../src/routing/request-shape.js';
import { pieceStrings } from '../helpers/generated.js';

/** The plain reading of RFC 6265 pairs: split on `;`, name before the first `=`, both trimmed. */
function splitReading(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

t.test('reads the named cookie and nothing that merely contains its name', async (t) => {
  const name = 'tg_session';
  t.equal(readCookie('tg_session=abc', name), 'abc');
  t.equal(readCookie('a=1; tg_session=abc; b=2', name), 'abc');
  t.equal(readCookie('a=1;tg_session = abc ;b=2', name), 'abc', 'whitespace around name and value');
  t.equal(readCookie('tg_session_tx=tx; tg_session=abc', name), 'abc', 'a longer name sharing the prefix');
  t.equal(readCookie('x_tg_session=evil; tg_session=abc', name), 'abc', 'a name ending in it');
  t.equal(readCookie('note=tg_session=evil; tg_session=abc', name), 'abc', 'the name inside another value');
  t.equal(readCookie('other=x tg_session=evil', name), undefined, 'not at the start of a pair');
  t.equal(readCookie('tg_session=; tg_session=abc', name), undefined, 'the first pair decides, and empty is absent');
  t.equal(readCookie('tg_session=a=b', name), 'a=b', 'the value runs to the next ;');
  t.equal(readCookie('tg_session', name), undefined, 'a name without =');
  t.equal(readCookie(undefined, name), undefined);
  t.equal(readCookie('', name), undefined);
});

t.test('agrees with the split reading on generated headers', async (t) => {
  const alphabet = ['tg_session', 'tg_session_tx', 'x', '=', ';', ' ', '\t', '\u00a0', 'v', 'tg_', '==', '; '];
  const generate = pieceStrings(alphabet, 7, 10);
  let disagreements = 0;
  for (let i = 0; i < 20_000; i++) {
    const header = generate();
    for (const name of ['tg_session', 'tg_session_tx']) {
      if (readCookie(header, name) !== splitReading(header, name)) {
        disagreements++;
        if (disagreements < 5) t.fail(`${JSON.stringify(header)} ${name}: ${readCookie(header, name)} vs ${splitReading(header, name)}`);
      }
    }
  }
  t.equal(disagreements, 0);
});
