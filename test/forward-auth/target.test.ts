import t from 'tap';
import { normaliseTarget } from '../../src/forward-auth/target.js';
import { trustedPeers } from '../../src/forward-auth/trusted-peers.js';

t.test('described targets are decided in the form the proxy routes', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['/projects?tab=1', '/projects?tab=1'],
    ['/login/../projects/x', '/projects/x'],
    ['/login/%2e%2e/projects/x', '/projects/x'],
    ['/login/%2E%2e/projects/x', '/projects/x'],
    ['/a/./b/../../c', '/c'],
    ['/../../etc', '/etc'],
    ['/a/..', '/'],
    ['/a/b/.', '/a/b/'],
    ['/%7Euser/%41', '/~user/A'],
    ['/a%2fb', '/a%2Fb'],
    ['/x?redirect=/../y', '/x?redirect=/../y'],
    ['', undefined],
    ['projects', undefined],
    ['http://evil.example/x', undefined],
    ['/a b', undefined],
    ['/a#frag', undefined],
    ['/a\r\nx: y', undefined],
  ];
  for (const [raw, want] of cases) t.equal(normaliseTarget(raw), want, JSON.stringify(raw));
});

t.test('trusted peers: addresses and ranges, IPv4-mapped IPv6, nobody when empty', async (t) => {
  const check = trustedPeers(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);
  t.ok(check('127.0.0.1'));
  t.ok(check('::ffff:127.0.0.1'));
  t.ok(check('10.42.0.7'));
  t.ok(check('::1'));
  t.ok(check('fd12::1'));
  t.notOk(check('127.0.0.2'));
  t.notOk(check('11.0.0.1'));
  t.notOk(check(undefined));
  t.notOk(trustedPeers([])('127.0.0.1'));
});
