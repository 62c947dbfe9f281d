import t from 'tap';
import { buildOrigin, isAllowedPostLogoutRedirect, safeRelativeRedirect } from '../../src/tenancy/redirect.js';
import { describeEntry, readFixture } from './fixture-reader.js';

t.test('corpus: every hostile redirect target is refused', async (t) => {
  const entries = readFixture('open-redirects.txt');
  t.ok(entries.length >= 150, 'the corpus is not accidentally truncated');
  for (const entry of entries) {
    t.equal(safeRelativeRedirect(entry.value), undefined, describeEntry(entry));
  }
});

t.test('corpus: every safe redirect target is accepted unchanged', async (t) => {
  for (const entry of readFixture('safe-redirects.txt')) {
    t.equal(safeRelativeRedirect(entry.value), entry.value, describeEntry(entry));
  }
});

t.test('empty, missing and non-string values are refused', async (t) => {
  t.equal(safeRelativeRedirect(undefined), undefined);
  t.equal(safeRelativeRedirect(''), undefined);
  t.equal(safeRelativeRedirect(['/a'] as unknown as string), undefined);
});

t.test('length is bounded at 2048 characters', async (t) => {
  const at = `/${'a'.repeat(2047)}`;
  t.equal(safeRelativeRedirect(at), at, '2048 accepted');
  t.equal(safeRelativeRedirect(`${at}a`), undefined, '2049 refused');
});

t.test('up to four layers of encoding are looked through', async (t) => {
  // `%25` layers around a harmless character: accepted when within the limit.
  t.equal(safeRelativeRedirect('/a%25252541'), '/a%25252541', 'four decodings, stable after');
  t.equal(safeRelativeRedirect('/a%2525252541'), undefined, 'five decodings');
  // The same depth hiding a slash is refused at the layer where it appears.
  t.equal(safeRelativeRedirect('/%2525252f%2525252fevil.example'), undefined);
});

t.test('a first segment shaped like a scheme is refused; later segments may hold colons', async (t) => {
  t.equal(safeRelativeRedirect('/a:b'), undefined);
  t.equal(safeRelativeRedirect('/mailto:x'), undefined);
  t.equal(safeRelativeRedirect('/projects/a:b'), '/projects/a:b');
  t.equal(safeRelativeRedirect('/1:2'), '/1:2', 'a scheme starts with a letter');
});

t.test('a decoded space may sit inside a segment only', async (t) => {
  t.equal(safeRelativeRedirect('/files/report%20final.pdf'), '/files/report%20final.pdf');
  t.equal(safeRelativeRedirect('/files/%20report'), undefined);
  t.equal(safeRelativeRedirect('/files/report%20'), undefined);
  t.equal(safeRelativeRedirect('/files/report%20/x'), undefined);
  t.equal(safeRelativeRedirect('/files/report%09final'), undefined, 'a tab never');
  t.equal(safeRelativeRedirect('/files/report%C2%A0final'), undefined, 'nor a no-break space');
});

t.test('a value that only becomes a literal % when decoded is not decoded further', async (t) => {
  t.equal(safeRelativeRedirect('/100%25'), '/100%25');
  t.equal(safeRelativeRedirect('/100%25zz'), '/100%25zz');
  t.equal(safeRelativeRedirect('/100%zz'), undefined, 'malformed at the first layer');
});

t.test('gateway paths are matched by first segment, not by prefix', async (t) => {
  t.equal(safeRelativeRedirect('/logout'), undefined);
  t.equal(safeRelativeRedirect('/logouts'), '/logouts');
  t.equal(safeRelativeRedirect('/login/acme'), undefined);
  t.equal(safeRelativeRedirect('/login-help'), '/login-help');
  t.equal(safeRelativeRedirect('/callback_x'), undefined);
  t.equal(safeRelativeRedirect('/projects/callback_x'), '/projects/callback_x');
  t.equal(safeRelativeRedirect('/projects/logout'), '/projects/logout');
});

const knownOrigins = new Set(['https://ml.example.com', 'https://acme.ml.example.com', 'http://127.0.0.1:8080']);

t.test('post-logout: exactly <origin>/login or <origin>/login/<tenant>', async (t) => {
  const opts = { knownOrigins, tenant: 'acme' };
  for (const uri of [
    'https://ml.example.com/login',
    'https://acme.ml.example.com/login',
    'https://acme.ml.example.com/login/acme',
    'https://ml.example.com/login/acme',
    'https://acme.ml.example.com/login/ACME',
    'http://127.0.0.1:8080/login',
    'http://127.0.0.1:8080/login/acme',
  ]) {
    t.ok(isAllowedPostLogoutRedirect(uri, opts), uri);
  }
});

t.test('post-logout: the tenant is compared case-insensitively and must be valid', async (t) => {
  const uri = 'https://acme.ml.example.com/login/acme';
  t.ok(isAllowedPostLogoutRedirect(uri, { knownOrigins, tenant: 'ACME' }));
  t.notOk(isAllowedPostLogoutRedirect(uri, { knownOrigins, tenant: 'acme2' }));
  t.notOk(isAllowedPostLogoutRedirect(uri, { knownOrigins }), 'no tenant: only /login');
  t.ok(isAllowedPostLogoutRedirect('https://acme.ml.example.com/login', { knownOrigins }));
  t.notOk(
    isAllowedPostLogoutRedirect('https://acme.ml.example.com/login/..', { knownOrigins, tenant: '..' }),
    'an invalid tenant allows nothing but /login',
  );
  t.notOk(
    isAllowedPostLogoutRedirect('https://acme.ml.example.com/login/\u212acme', { knownOrigins, tenant: 'kcme' }),
    'no Unicode case folding',
  );
});

t.test('post-logout: unknown origins are refused even for the right path', async (t) => {
  t.notOk(isAllowedPostLogoutRedirect('https://acme.ml.example.com/login', { knownOrigins: new Set() }));
  t.notOk(
    isAllowedPostLogoutRedirect('https://acme.ml.example.com/login', {
      knownOrigins: new Set(['https://ml.example.com']),
    }),
  );
});

t.test('corpus: hostile post-logout URIs are refused', async (t) => {
  const opts = { knownOrigins, tenant: 'acme' };
  for (const entry of readFixture('hostile-post-logout.txt')) {
    t.notOk(isAllowedPostLogoutRedirect(entry.value, opts), describeEntry(entry));
  }
});

t.test('buildOrigin matches URL.origin', async (t) => {
  const cases: Array<[Parameters<typeof buildOrigin>, string]> = [
    [['https', 'acme.ml.example.com'], 'https://acme.ml.example.com'],
    [['https', 'acme.ml.example.com', 443], 'https://acme.ml.example.com'],
    [['https', 'acme.ml.example.com', 8443], 'https://acme.ml.example.com:8443'],
    [['http', '127.0.0.1', 80], 'http://127.0.0.1'],
    [['http', '127.0.0.1', 8080], 'http://127.0.0.1:8080'],
    [['http', '[::1]', 8080], 'http://[::1]:8080'],
    [['https', 'xn--bcher-kva.de'], 'https://xn--bcher-kva.de'],
  ];
  for (const [args, want] of cases) {
    const origin = buildOrigin(...args);
    t.equal(origin, want);
    t.equal(new URL(`${origin}/login`).origin, origin, `${want} round-trips through URL`);
  }
});

t.test('buildOrigin refuses what would not be a canonical origin', async (t) => {
  t.throws(() => buildOrigin('https', 'ACME.example.com'), TypeError);
  t.throws(() => buildOrigin('https', 'acme.example.com:443'), TypeError);
  t.throws(() => buildOrigin('https', 'evil.example/x'), TypeError);
  t.throws(() => buildOrigin('https', 'acme.example.com.'), TypeError);
  t.throws(() => buildOrigin('ftp' as 'https', 'acme.example.com'), TypeError);
  t.throws(() => buildOrigin('https', 'acme.example.com', 0), RangeError);
  t.throws(() => buildOrigin('https', 'acme.example.com', 65536), RangeError);
  t.throws(() => buildOrigin('https', 'acme.example.com', 80.5), RangeError);
});

t.test('an origin from buildOrigin is accepted as a known origin', async (t) => {
  const origin = buildOrigin('https', 'acme.ml.example.com', 443);
  t.ok(isAllowedPostLogoutRedirect(`${origin}/login/acme`, { knownOrigins: new Set([origin]), tenant: 'acme' }));
});
