import t from 'tap';
import { trustedPeers } from '../../src/forward-auth/trusted-peers.js';

t.test('trusted peers: addresses, ranges and IPv4-mapped peers, the same answer every time', async (t) => {
  const trusted = trustedPeers(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
  const cases: Array<[string | undefined, boolean]> = [
    ['127.0.0.1', true],
    ['::ffff:127.0.0.1', true],
    ['10.200.3.4', true],
    ['11.0.0.1', false],
    ['fd12::1', true],
    ['fe80::1', false],
    ['127.0.0.2', false],
    [undefined, false],
    ['', false],
  ];
  for (let round = 0; round < 3; round++) {
    for (const [peer, want] of cases) t.equal(trusted(peer), want, `${String(peer)} (round ${round + 1})`);
  }
  const nobody = trustedPeers([]);
  t.equal(nobody('127.0.0.1'), false, 'an empty list trusts nobody');
});

t.test('many distinct peers keep being answered correctly past the remembered set', async (t) => {
  const trusted = trustedPeers(['10.0.0.0/16']);
  let wrong = 0;
  for (let i = 0; i < 3000; i++) {
    const inside = i % 2 === 0;
    const peer = inside ? `10.0.${(i >> 8) & 255}.${i & 255}` : `10.1.${(i >> 8) & 255}.${i & 255}`;
    if (trusted(peer) !== inside) wrong++;
  }
  t.equal(wrong, 0);
});
