import t from 'tap';
import { findBinary, startNginx } from '../helpers/proxies.js';
import { forwardAuthTenants, proxyFlows } from './proxy-flows.js';

const nginx = findBinary('nginx', ['/usr/sbin/nginx']);

t.test('nginx auth_request with the shipped configuration', { skip: nginx ? false : 'nginx is not installed (apt-get install nginx-light)', timeout: 60_000 }, async (t) => {
  const s = await forwardAuthTenants(t);
  const proxy = await startNginx(t, nginx!, s.dir, { gateway: `127.0.0.1:${s.publicPort}`, webapp: new URL(s.upstream.url).host });
  await proxyFlows(t, s, proxy.port);
  t.notMatch(proxy.logs(), /\[(emerg|alert|crit)\]/, 'nginx reported no serious problem');
});
