import t from 'tap';
import { twoTenants } from '../helpers/two-tenants.js';

const NAV = { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };

t.test('authenticate mode: an unsafe redirect parameter never stays in the address bar, session or not', async (t) => {
  const s = await twoTenants(t);
  const bob = await s.login('bob');
  const before = s.upstream.seen.length;
  const cases: Array<[string, string]> = [
    ['/?redirect=https:google.com', '/'],
    ['/projects?tab=2&redirect=https://evil.example&x=1', '/projects?tab=2&x=1'],
    ['/p?rd=//evil.example', '/p'],
    ['/p?next=https://evil.example&page=3', '/p?page=3'],
    ['/p?return_to=/\\evil.example', '/p'],
  ];
  for (const [path, cleaned] of cases) {
    const r = await s.req({ path, host: 'acme.ml.example.com', headers: NAV }, bob.browser);
    t.equal(r.status, 303, `${path}: sent back`);
    t.equal(r.headers.location, cleaned, `${path}: without the unsafe parameter, the rest kept`);
  }
  t.equal(s.upstream.seen.length, before, 'the webapp never saw them');
  const kept = await s.req({ path: '/p?next=2&redirect=%2Fprojects', host: 'acme.ml.example.com', headers: NAV }, bob.browser);
  t.equal(kept.status, 200, 'safe values and non-redirect values stay');
  const anon = await s.req({ path: '/?redirect=https:google.com', host: 'acme.ml.example.com', headers: NAV });
  t.equal(anon.status, 303, 'without a session too');
  t.equal(anon.headers.location, '/');
});
