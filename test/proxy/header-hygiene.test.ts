/**
 * Client-sent identity and forwarding headers never reach an upstream, in any spelling:
 * the filter as a table, then the reproductions against real upstreams in both modes.
 */
import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { headerFilter } from '../../src/proxy/header-hygiene.js';
import { publicRequest, seedRouteTenants, startGateway, startUpstream } from '../helpers/gateway.js';
import { twoTenants } from '../helpers/two-tenants.js';

/** What a CGI-style server (WSGI, Rack, PHP-FPM) makes of the headers: `HTTP_X_AUTH_REQUEST_USER` and friends, duplicates joined. */
function cgiView(headers: IncomingHttpHeaders): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const key = `HTTP_${name.toUpperCase().replace(/-/g, '_')}`;
    const v = Array.isArray(value) ? value.join(',') : String(value);
    env[key] = env[key] === undefined ? v : `${env[key]},${v}`;
  }
  return env;
}

const SPOOFED = [
  'x-auth-request-user', 'x_auth_request_user', 'X_AUTH_REQUEST_GROUPS', 'x-auth_request-tenant', 'x_auth-request_admin',
  'x-auth-request-subject', 'x-auth-request-issuer', 'x-auth-request-jwt', 'x_auth_request_jwt',
  'x-forwarded-host', 'x_forwarded_host', 'x_forwarded_port', 'x_forwarded_prefix', 'x-forwarded-user', 'x-forwarded-for', 'x-forwarded-proto',
  'forwarded', 'x-real-ip', 'x_real_ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'cf_connecting_ip',
  'x-original-url', 'x_original_url', 'x-original-uri', 'x-rewrite-url', 'remote-user', 'remote_user', 'x-remote-user', 'x_remote_user',
  'x-remote-group', 'x-user', 'x_user',
];
const KEPT = ['accept', 'cookie', 'user-agent', 'content-type', 'authorization', 'x-request-id', 'x-csrf-token', 'origin', 'referer', 'x-requested-with', 'xauth', 'x-forwarded', 'x-users', 'remote-userx', 'if-none-match'];

t.test('the filter drops every spelling of an owned or trusted header, and keeps ordinary ones', async (t) => {
  for (const underscore of [true, false]) {
    const drop = headerFilter({ dropUnderscoreHeaders: underscore });
    for (const name of SPOOFED) t.ok(drop(name.toLowerCase()), `dropUnderscoreHeaders ${underscore}: ${name} is dropped`);
    for (const name of KEPT) t.notOk(drop(name), `dropUnderscoreHeaders ${underscore}: ${name} is kept`);
  }
  t.ok(headerFilter()('x_custom_header'), 'by default any underscore header is dropped');
  t.notOk(headerFilter({ dropUnderscoreHeaders: false })('x_custom_header'), 'unless the operator keeps them');
});

t.test("authenticate mode: underscore spellings do not add to bob's identity (CGI view)", async (t) => {
  const s = await twoTenants(t);
  const bob = await s.login('bob');
  t.equal(bob.callback?.status, 302, 'bob is signed in');
  const res = await s.req({
    path: '/projects',
    host: 'acme.ml.example.com',
    headers: {
      accept: 'application/json',
      x_auth_request_groups: 'Admins',
      x_auth_request_admin: 'true',
      x_auth_request_tenant: 'globex',
      x_auth_request_user: 'alice@acme.com',
      'x-auth_request-email': 'alice@acme.com',
      x_forwarded_host: 'globex.ml.example.com',
      x_real_ip: '6.6.6.6',
    },
  }, bob.browser);
  t.equal(res.status, 200, 'served');
  const seen = s.upstream.seen.at(-1)!.headers;
  const env = cgiView(seen);
  t.equal(env.HTTP_X_AUTH_REQUEST_GROUPS, 'Users', 'groups are bob\'s only');
  t.equal(env.HTTP_X_AUTH_REQUEST_ADMIN, 'false', 'not admin');
  t.equal(env.HTTP_X_AUTH_REQUEST_TENANT, 'acme', 'tenant acme');
  t.equal(env.HTTP_X_AUTH_REQUEST_USER, 'bob@acme.com', 'user bob');
  t.equal(env.HTTP_X_AUTH_REQUEST_EMAIL, 'bob@acme.com', 'email bob');
  t.equal(env.HTTP_X_FORWARDED_HOST, 'acme.ml.example.com', 'the host the gateway saw');
  t.equal(env.HTTP_X_REAL_IP, undefined, 'no client address claim');
  t.same(Object.keys(seen).filter((k) => k.includes('_')), [], 'no underscore header at all');
});

t.test('route mode: an underscore identity header never reaches the apiserver alone', async (t) => {
  const webapp = await startUpstream(t);
  const api = await startUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: webapp.url, apiserver: api.url } });
  await seedRouteTenants(gw.adminUrl);
  const spoof = {
    x_auth_request_user: 'admin@globex.com',
    'x-client-ip': '6.6.6.6',
    'true-client-ip': '6.6.6.6',
    'cf-connecting-ip': '6.6.6.6',
    'x-rewrite-url': '/admin',
    'remote-user': 'admin',
    'x-user': 'admin',
    x_remote_user: 'admin',
    x_original_url: '/admin',
    x_forwarded_port: '1',
    x_forwarded_prefix: '/evil',
  };
  const res = await publicRequest(gw.publicPort, { path: '/api/users.get_current_user', host: 'globex.ml.example.com', headers: { accept: 'application/json', ...spoof } });
  t.equal(res.status, 200, 'proxied');
  const seen = api.seen.at(-1)!.headers;
  for (const name of Object.keys(spoof)) t.equal(seen[name], undefined, `${name} is dropped`);
  t.same(Object.keys(seen).filter((k) => k.startsWith('x-auth-request') || k.includes('_')), [], 'no identity header at all');
  const page = await publicRequest(gw.publicPort, { path: '/projects', headers: { accept: 'application/json', ...spoof } });
  t.equal(page.status, 200, 'the webapp path too');
  for (const name of Object.keys(spoof)) t.equal(webapp.seen.at(-1)!.headers[name], undefined, `webapp: ${name} is dropped`);
});

t.test('public.dropUnderscoreHeaders: false keeps ordinary underscore headers, never owned ones', async (t) => {
  const webapp = await startUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: webapp.url }, public: { host: '127.0.0.1', port: 0, url: 'https://ml.example.com', dropUnderscoreHeaders: false } });
  const res = await publicRequest(gw.publicPort, { path: '/projects', headers: { accept: 'application/json', x_custom_header: 'kept', x_auth_request_user: 'admin', x_forwarded_host: 'evil.example' } });
  t.equal(res.status, 200);
  const seen = webapp.seen.at(-1)!.headers;
  t.equal(seen.x_custom_header, 'kept', 'an ordinary underscore header passes');
  t.equal(seen.x_auth_request_user, undefined, 'an owned one does not');
  t.equal(seen.x_forwarded_host, undefined, 'nor a forwarding one');
});
