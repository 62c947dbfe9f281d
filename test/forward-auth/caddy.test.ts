import t from 'tap';
import { findBinary, startCaddy } from '../helpers/proxies.js';
import { forwardAuthTenants, proxyFlows } from './proxy-flows.js';

const caddy = findBinary('caddy', ['/usr/bin/caddy']);

t.test('Caddy forward_auth with the shipped Caddyfile', { skip: caddy ? false : 'caddy is not installed (apt-get install caddy)', timeout: 60_000 }, async (t) => {
  const s = await forwardAuthTenants(t);
  const proxy = await startCaddy(t, caddy!, s.dir, { gateway: `127.0.0.1:${s.publicPort}`, webapp: new URL(s.upstream.url).host });
  await proxyFlows(t, s, proxy.port);
});
