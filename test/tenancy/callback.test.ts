import t from 'tap';
import {
  CALLBACK_REFUSALS,
  parseCallbackPath,
  splitRawUrl,
  validateCallbackQuery,
  type CallbackRefusal,
} from '../../src/tenancy/callback.js';
import { decodeEscapes, printable, readFixture } from './fixture-reader.js';

/** Runs a raw request target through both checks; returns the first refusal. */
function refusalOf(target: string): CallbackRefusal | undefined {
  const { path, query } = splitRawUrl(target);
  const parsed = parseCallbackPath(path);
  if ('error' in parsed) return parsed.error;
  const result = validateCallbackQuery(query ?? '');
  return result.ok ? undefined : result.reason;
}

t.test('splitRawUrl splits at the first ? without decoding', async (t) => {
  t.same(splitRawUrl('/callback_x?code=a%2F&state=b?c'), { path: '/callback_x', query: 'code=a%2F&state=b?c' });
  t.same(splitRawUrl('/callback_x'), { path: '/callback_x', query: undefined });
  t.same(splitRawUrl('/callback_x?'), { path: '/callback_x', query: '' });
});

t.test('parseCallbackPath accepts plain and once-encoded client IDs', async (t) => {
  t.same(parseCallbackPath('/callback_webapp'), { clientId: 'webapp' });
  t.same(parseCallbackPath('/callback_My.Client-1_x~'), { clientId: 'My.Client-1_x~' });
  t.same(parseCallbackPath("/callback_a:b@c!$&'()*+,;="), { clientId: "a:b@c!$&'()*+,;=" });
  t.same(parseCallbackPath('/callback_urn%3Aacme%3Aml'), { clientId: 'urn:acme:ml' }, 'decoded once');
  t.same(parseCallbackPath('/callback_...'), { clientId: '...' }, 'three dots is a name, not a dot segment');
  t.same(parseCallbackPath(`/callback_${'a'.repeat(255)}`), { clientId: 'a'.repeat(255) });
  t.same(parseCallbackPath(`/callback_${'%61'.repeat(255)}`), { clientId: 'a'.repeat(255) }, 'fully encoded, 255');
});

t.test('parseCallbackPath length limits', async (t) => {
  t.same(parseCallbackPath(`/callback_${'a'.repeat(256)}`), { error: 'too_long' });
  t.same(parseCallbackPath(`/callback_${'%61'.repeat(256)}`), { error: 'too_long' });
  t.same(parseCallbackPath(`/callback_${'a'.repeat(10_000)}`), { error: 'too_long' });
});

t.test('validateCallbackQuery: code and state', async (t) => {
  t.same(validateCallbackQuery('code=abc&state=xyz'), { ok: true, params: { code: 'abc', state: 'xyz' } });
  t.same(validateCallbackQuery('state=xyz&code=abc'), { ok: true, params: { code: 'abc', state: 'xyz' } });
  t.same(validateCallbackQuery('code=a%2Fb%3D&state=x+y'), { ok: true, params: { code: 'a/b=', state: 'x y' } });
  t.same(validateCallbackQuery('code=a%2Bb&state=s'), { ok: true, params: { code: 'a+b', state: 's' } });
});

t.test('validateCallbackQuery: what Keycloak and oidc-provider send', async (t) => {
  // Keycloak: state, session_state, iss, code.
  t.same(
    validateCallbackQuery(
      'state=s1&session_state=7d1f-aa&iss=https%3A%2F%2Fidp.example%2Frealms%2Facme&code=c0de.1.2',
    ),
    {
      ok: true,
      params: { state: 's1', session_state: '7d1f-aa', iss: 'https://idp.example/realms/acme', code: 'c0de.1.2' },
    },
  );
  // oidc-provider: code, state, iss.
  t.same(validateCallbackQuery('code=Zx_9-Q&state=st&iss=http%3A%2F%2F127.0.0.1%3A4000'), {
    ok: true,
    params: { code: 'Zx_9-Q', state: 'st', iss: 'http://127.0.0.1:4000' },
  });
});

t.test('validateCallbackQuery: error responses', async (t) => {
  t.same(validateCallbackQuery('error=access_denied&state=s'), {
    ok: true,
    params: { error: 'access_denied', state: 's' },
  });
  t.same(
    validateCallbackQuery(
      'error=login_required&error_description=User+must+log+in.&error_uri=https%3A%2F%2Fidp.example%2Fe&state=s&iss=https%3A%2F%2Fidp.example',
    ),
    {
      ok: true,
      params: {
        error: 'login_required',
        error_description: 'User must log in.',
        error_uri: 'https://idp.example/e',
        state: 's',
        iss: 'https://idp.example',
      },
    },
  );
});

t.test('validateCallbackQuery: a form_post body is the same format', async (t) => {
  const body = new URLSearchParams({ code: 'a b/c', state: 'st' }).toString();
  t.equal(body, 'code=a+b%2Fc&state=st');
  t.same(validateCallbackQuery(body), { ok: true, params: { code: 'a b/c', state: 'st' } });
});

t.test('validateCallbackQuery: value length limits', async (t) => {
  const ok = (q: string): boolean => validateCallbackQuery(q).ok;
  t.ok(ok(`code=${'c'.repeat(2048)}&state=s`));
  t.same(validateCallbackQuery(`code=${'c'.repeat(2049)}&state=s`), { ok: false, reason: 'too_long' });
  t.ok(ok(`code=c&state=${'s'.repeat(2048)}`));
  t.same(validateCallbackQuery(`code=c&state=${'s'.repeat(2049)}`), { ok: false, reason: 'too_long' });
  t.ok(ok(`error=${'e'.repeat(256)}&state=s`));
  t.same(validateCallbackQuery(`error=${'e'.repeat(257)}&state=s`), { ok: false, reason: 'too_long' });
  t.ok(ok(`error=e&error_description=${'d'.repeat(1024)}&state=s`));
  t.same(validateCallbackQuery(`error=e&error_description=${'d'.repeat(1025)}&state=s`), {
    ok: false,
    reason: 'too_long',
  });
  // Encoded length does not count; the decoded value does.
  t.ok(ok(`code=${'%63'.repeat(2048)}&state=s`));
  t.same(validateCallbackQuery(`code=c&state=s&iss=${'i'.repeat(8192)}`), { ok: false, reason: 'too_long' });
});

t.test('validateCallbackQuery refuses non-strings', async (t) => {
  t.same(validateCallbackQuery(undefined as unknown as string), { ok: false, reason: 'bad_encoding' });
});

t.test('corpus: hostile callbacks are refused with the expected reason', async (t) => {
  const entries = readFixture('hostile-callbacks.txt');
  const seen = new Set<CallbackRefusal>();
  for (const entry of entries) {
    const space = entry.raw.indexOf(' ');
    t.ok(space > 0, `line ${entry.line} has a reason`);
    const expected = entry.raw.slice(0, space) as CallbackRefusal;
    t.ok(CALLBACK_REFUSALS.includes(expected), `line ${entry.line}: ${expected} is a known reason`);
    const target = decodeEscapes(entry.raw.slice(space + 1));
    t.equal(refusalOf(target), expected, `line ${entry.line}: ${printable(entry.raw.slice(space + 1))}`);
    seen.add(expected);
  }
  t.same([...CALLBACK_REFUSALS].filter((r) => !seen.has(r)), [], 'every reason code is exercised by the corpus');
});

t.test('well-formed callbacks pass both checks', async (t) => {
  for (const target of [
    '/callback_webapp?code=abc&state=xyz',
    '/callback_webapp?state=xyz&code=abc&iss=https%3A%2F%2Fidp.example',
    '/callback_webapp?error=access_denied&state=xyz',
    '/callback_urn%3Aacme?code=a&state=b&session_state=1',
  ]) {
    t.equal(refusalOf(target), undefined, target);
  }
});

t.test('validateCallbackQuery: what Google adds is ignored, within bounds', async (t) => {
  const google = 'state=s1&iss=https%3A%2F%2Faccounts.google.com&code=4%2F0Ab_x&scope=email+profile+openid+https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fuserinfo.email&authuser=0&hd=acme.com&prompt=consent';
  t.same(validateCallbackQuery(google), {
    ok: true,
    params: {
      state: 's1',
      iss: 'https://accounts.google.com',
      code: '4/0Ab_x',
      extra: { scope: 'email profile openid https://www.googleapis.com/auth/userinfo.email', authuser: '0', hd: 'acme.com', prompt: 'consent' },
    },
  });
  const many = Array.from({ length: 16 }, (_, i) => `x${i}=1`).join('&');
  t.equal(validateCallbackQuery(`code=a&state=b&${many}`).ok, true, '16 extra parameters');
  t.same(validateCallbackQuery(`code=a&state=b&${many}&x16=1`), { ok: false, reason: 'too_many_params' });
  t.same(validateCallbackQuery(`code=a&state=b&hd=${'a'.repeat(1025)}`), { ok: false, reason: 'too_long' });
  t.same(validateCallbackQuery(`code=a&state=b&${'h'.repeat(65)}=1`), { ok: false, reason: 'unknown_param' });
  t.same(validateCallbackQuery('code=a&state=b&hd=a&hd=b'), { ok: false, reason: 'duplicate_param' });
  t.same(validateCallbackQuery('code=a&state=b&hd=%0d%0aX'), { ok: false, reason: 'control_char' });
  t.same(validateCallbackQuery('code=a&state=b&hd=%ff'), { ok: false, reason: 'bad_encoding' });
  for (const name of ['Code', 'STATE', 'Iss', 'redirect', 'Redirect_Uri', 'id_token', 'nonce', 'client_id', '__proto__', '_x', '1x', 'h%64']) {
    t.same(validateCallbackQuery(`code=a&state=b&${name}=1`), { ok: false, reason: 'unknown_param' }, name);
  }
  t.same(validateCallbackQuery('error=access_denied&state=b&hd=acme.com'), { ok: true, params: { error: 'access_denied', state: 'b', extra: { hd: 'acme.com' } } });
});
