import t from 'tap';
import { loginLocation } from '../../src/routing/login-location.js';
import { pieceStrings } from '../helpers/generated.js';

function reference(tenant: string, params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return `/login/${encodeURIComponent(tenant)}${s ? `?${s}` : ''}`;
}

t.test('builds the login address with form-encoded parameters', async (t) => {
  t.equal(loginLocation('acme'), '/login/acme');
  t.equal(loginLocation('acme', { redirect: undefined }), '/login/acme');
  t.equal(loginLocation('acme', { redirect: '' }), '/login/acme', 'empty values are left out');
  t.equal(loginLocation('acme', { redirect: '/projects/1?x=a&y=b' }), '/login/acme?redirect=%2Fprojects%2F1%3Fx%3Da%26y%3Db');
  t.equal(loginLocation('acme', { login_hint: 'Ann Lee (ml)!@acme.com', redirect: '/~me' }), '/login/acme?login_hint=Ann+Lee+%28ml%29%21%40acme.com&redirect=%2F%7Eme');
});

t.test('agrees with URLSearchParams on every kind of character', async (t) => {
  const pieces = ['a', 'Z', '0', ' ', '+', '%', '&', '=', '?', '#', '/', '~', '!', "'", '(', ')', '*', '-', '.', '_', 'é', '日', '\u{1F600}', '\ud800', '\udc00', '\n', '"', '<'];
  const generate = pieceStrings(pieces, 11, 8);
  let differences = 0;
  for (let i = 0; i < 5000; i++) {
    const hint = generate();
    const redirect = generate();
    const params = { login_hint: hint, redirect };
    if (loginLocation('acme-1', params) !== reference('acme-1', params)) {
      differences++;
      if (differences < 5) t.fail(`${JSON.stringify(params)}: ${loginLocation('acme-1', params)} vs ${reference('acme-1', params)}`);
    }
  }
  t.equal(differences, 0);
});
