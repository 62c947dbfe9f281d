import t, { type Test } from 'tap';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Provider } from '../../src/directory/types.js';
import { ErrorCodes, GatewayError } from '../../src/errors.js';
import { ClientRegistry, deriveIssuer } from '../../src/oidc/client-registry.js';
import { checkProviderUrl } from '../../src/tenancy/provider-url.js';
import { startIdp } from '../helpers/idp.js';

const SECRET = 'client-secret-never-logged';

function provider(clientId: string, configuration: Partial<Provider['configuration']>, updatedAt = 1): Provider {
  return {
    company: `company-${clientId}`,
    provider: 'keycloak',
    updatedAt,
    configuration: { id: clientId, client_id: clientId, client_secret: SECRET, ...configuration },
  };
}

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP server that accepts connections and never answers. */
async function silentServer(t: Test): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

/** A fetch that counts requests by URL. */
function countingFetch() {
  const calls: string[] = [];
  const impl = ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    calls.push(String(input instanceof Request ? input.url : input));
    return fetch(input, init);
  }) as typeof fetch;
  return { calls, fetch: impl };
}

function logger() {
  const entries: Array<{ obj: object; msg: string }> = [];
  return { entries, warn: (obj: object, msg: string) => entries.push({ obj, msg }) };
}

t.test('deriveIssuer', async (t) => {
  t.equal(
    deriveIssuer({ authorization_endpoint: 'https://kc.acme.com/realms/acme/protocol/openid-connect/auth' }),
    'https://kc.acme.com/realms/acme',
  );
  t.equal(
    deriveIssuer({ authorization_endpoint: 'https://kc.acme.com:8443/auth/realms/acme/protocol/openid-connect/auth' }),
    'https://kc.acme.com:8443/auth/realms/acme',
    'legacy /auth prefix and port kept',
  );
  t.equal(
    deriveIssuer({ issuer: 'https://idp.example.com/tenant', authorization_endpoint: 'https://kc/realms/x/protocol/openid-connect/auth' }),
    'https://idp.example.com/tenant',
    'a saved issuer wins',
  );
  t.equal(deriveIssuer({ authorization_endpoint: 'https://login.example.com/oauth2/authorize' }), undefined, 'not Keycloak');
  t.equal(deriveIssuer({ authorization_endpoint: 'https://kc/realms/protocol/openid-connect/auth' }), undefined, 'no realm');
  t.equal(deriveIssuer({ authorization_endpoint: 'https://kc/realms/a/protocol/openid-connect/auth?x=1' }), undefined, 'query');
  t.equal(deriveIssuer({ authorization_endpoint: 'not a url' }), undefined);
  t.equal(deriveIssuer({}), undefined);
});

t.test('https on public addresses; http and private addresses only with the insecure flag', async (t) => {
  const strict = { insecureAllowPrivate: false };
  const insecure = { insecureAllowPrivate: true };
  for (const url of ['http://LOCALHOST:9/x', 'http://[::1]/x', 'http://127.1.2.3/x', 'http://kc.example.com/realms/a', 'http://10.0.0.1/x']) {
    t.match(checkProviderUrl(url, strict), /https is required/, url);
    t.equal(checkProviderUrl(url, insecure), undefined, url);
  }
  for (const url of [
    'https://localhost/x', 'https://a.localhost/x', 'https://127.0.0.1/x', 'https://[::1]/x', 'https://10.1.2.3/x', 'https://172.16.0.1/x',
    'https://192.168.1.1/x', 'https://169.254.169.254/latest', 'https://[fe80::1]/x', 'https://[fd00::1]/x', 'https://0.0.0.0/x',
    'https://[::ffff:127.0.0.1]/x', 'https://100.64.0.1/x',
  ]) {
    t.match(checkProviderUrl(url, strict), /loopback, private or link-local/, url);
    t.equal(checkProviderUrl(url, insecure), undefined, url);
  }
  t.equal(checkProviderUrl('https://8.8.8.8/x', strict), undefined);
  t.equal(checkProviderUrl('https://kc.example.com/realms/a', strict), undefined);
  t.match(checkProviderUrl('https://u:p@kc.example.com/', insecure), /credentials/);
  t.match(checkProviderUrl('ftp://127.0.0.1/x', insecure), /scheme/);
  t.match(checkProviderUrl('nope', insecure), /not a URL/);
});

t.test('against a real identity provider', async (t) => {
  const idp = await startIdp({
    clients: [{ client_id: 'acme-web', client_secret: SECRET, redirect_uris: ['http://127.0.0.1:1/callback_acme-web'] }],
    users: {},
  });
  t.teardown(() => idp.close());
  const wellKnown = '/.well-known/openid-configuration';

  t.test('discovers the issuer and its endpoints, once for concurrent callers', async (t) => {
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, insecureAllowPrivateProviders: true, retryMaxSeconds: 60 });
    t.teardown(() => registry.close());
    const before = idp.hits.get(wellKnown) ?? 0;
    const p = provider('acme-web', { issuer: idp.issuer });
    const [a, b, c] = await Promise.all([registry.get(p), registry.get(p), registry.get(p)]);
    t.equal(a, b);
    t.equal(b, c);
    t.equal((idp.hits.get(wellKnown) ?? 0) - before, 1, 'one discovery request');
    const meta = a.serverMetadata();
    t.equal(meta.issuer, idp.issuer);
    t.equal(meta.token_endpoint, idp.url('/token'));
    t.equal(meta.end_session_endpoint, idp.url('/session/end'));
    t.equal(a.clientMetadata().client_id, 'acme-web');
    t.equal(await registry.get(p), a, 'cached');
    t.equal((idp.hits.get(wellKnown) ?? 0) - before, 1, 'no request for a cached configuration');
  });

  t.test('a changed provider record or invalidate() rediscovers', async (t) => {
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, insecureAllowPrivateProviders: true, retryMaxSeconds: 60 });
    t.teardown(() => registry.close());
    const before = idp.hits.get(wellKnown) ?? 0;
    const first = await registry.get(provider('acme-web', { issuer: idp.issuer }, 1));
    const second = await registry.get(provider('acme-web', { issuer: idp.issuer }, 2));
    t.not(second, first, 'updatedAt changed');
    const third = await registry.get(provider('acme-web', { issuer: idp.issuer, display_name: 'Acme' }, 2));
    t.not(third, second, 'configuration changed');
    registry.invalidate('acme-web');
    const fourth = await registry.get(provider('acme-web', { issuer: idp.issuer, display_name: 'Acme' }, 2));
    t.not(fourth, third, 'invalidated');
    t.equal((idp.hits.get(wellKnown) ?? 0) - before, 4);
  });

  t.test("an authorization_endpoint that is not Keycloak's gives no issuer", async (t) => {
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, insecureAllowPrivateProviders: true, retryMaxSeconds: 60 });
    t.teardown(() => registry.close());
    const err = await registry.get(provider('acme-web', { authorization_endpoint: idp.url('/auth') })).catch((e: unknown) => e);
    t.type(err, GatewayError);
    t.match((err as GatewayError).detail, /no issuer/);
  });

  t.test('saved endpoints win over discovered ones', async (t) => {
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, insecureAllowPrivateProviders: true, retryMaxSeconds: 60 });
    t.teardown(() => registry.close());
    const config = await registry.get(
      provider('acme-web', {
        issuer: idp.issuer,
        end_session_endpoint: 'https://logout.acme.com/end',
        revocation_endpoint: 'http://127.0.0.1:1/revoke',
        token_endpoint: 'https://tokens.acme.com/token',
      }),
    );
    const meta = config.serverMetadata();
    t.equal(meta.end_session_endpoint, 'https://logout.acme.com/end');
    t.equal(meta.revocation_endpoint, 'http://127.0.0.1:1/revoke');
    t.equal(meta.token_endpoint, 'https://tokens.acme.com/token');
    t.equal(meta.authorization_endpoint, idp.url('/auth'), 'endpoints not saved are discovered');
    t.equal(meta.jwks_uri, idp.url('/jwks'));
  });

  t.test('a dead provider fails fast, backs off, and does not hold up another one', async (t) => {
    let now = 1_000_000;
    const { calls, fetch } = countingFetch();
    const log = logger();
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, insecureAllowPrivateProviders: true, retryMaxSeconds: 4, now: () => now, fetch, log });
    t.teardown(() => registry.close());
    const dead = provider('dead-web', { issuer: `http://127.0.0.1:${await closedPort()}/realms/dead` });
    const live = provider('acme-web', { issuer: idp.issuer });

    const started = Date.now();
    const err = await registry.get(dead).catch((e: unknown) => e);
    t.ok(Date.now() - started < 1500, 'a refused connection fails at once');
    t.type(err, GatewayError);
    t.equal((err as GatewayError).code, ErrorCodes.PROVIDER_UNAVAILABLE);
    t.equal((err as GatewayError).statusCode, 503);
    t.notMatch((err as GatewayError).message, /127\.0\.0\.1|ECONNREFUSED|fetch/, 'the public message hides the cause');
    t.match((err as GatewayError).detail, /discovery at http:\/\/127\.0\.0\.1:\d+\/realms\/dead/);
    t.equal(calls.length, 1);

    const attempts = () => calls.filter((c) => c.includes('/realms/dead')).length;
    const expectBackoff = async (waitMs: number, label: string) => {
      now += waitMs - 1;
      await t.rejects(registry.get(dead), { code: ErrorCodes.PROVIDER_UNAVAILABLE }, `${label}: still failing`);
      const before = attempts();
      now += 1;
      await t.rejects(registry.get(dead), { code: ErrorCodes.PROVIDER_UNAVAILABLE });
      t.equal(attempts(), before + 1, `${label}: retried after ${waitMs} ms, not before`);
    };
    await expectBackoff(1000, 'first retry');
    await expectBackoff(2000, 'second retry');
    await expectBackoff(4000, 'third retry');
    await expectBackoff(4000, 'capped at retryMaxSeconds');
    t.equal(attempts(), 5);

    t.ok(await registry.get(live), 'another provider still works');
    t.equal(log.entries.length, 5, 'each failed attempt is logged once');
    t.match(log.entries[0]!.obj, { clientId: 'dead-web', failures: 1, retryInSeconds: 1 });
    t.notMatch(JSON.stringify(log.entries), SECRET, 'the client secret is never logged');
  });

  t.test('a provider that never answers times out without delaying others', async (t) => {
    const port = await silentServer(t);
    const registry = new ClientRegistry({ httpTimeoutMs: 300, insecureAllowPrivateProviders: true, retryMaxSeconds: 60 });
    t.teardown(() => registry.close());
    const started = Date.now();
    const slow = registry.get(provider('slow-web', { issuer: `http://127.0.0.1:${port}/realms/slow` })).then(
      () => 'resolved',
      (e: GatewayError) => e,
    );
    await registry.get(provider('acme-web', { issuer: idp.issuer }));
    const fastElapsed = Date.now() - started;
    const err = await slow;
    const slowElapsed = Date.now() - started;
    t.type(err, GatewayError);
    t.match((err as GatewayError).detail, /timed out|abort/i);
    t.ok(slowElapsed >= 250 && slowElapsed < 2000, `timed out after httpTimeoutMs (${slowElapsed} ms)`);
    t.ok(fastElapsed < slowElapsed, 'the other provider was served first');
  });

  t.test('a working configuration is refreshed in the background after refreshSeconds', async (t) => {
    let now = 5_000_000;
    const { calls, fetch } = countingFetch();
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, insecureAllowPrivateProviders: true, retryMaxSeconds: 60, refreshSeconds: 100, now: () => now, fetch });
    t.teardown(() => registry.close());
    const p = provider('acme-web', { issuer: idp.issuer });
    const first = await registry.get(p);
    now += 99_000;
    t.equal(await registry.get(p), first);
    t.equal(calls.length, 1, 'no refresh before refreshSeconds');
    now += 1_000;
    t.equal(await registry.get(p), first, 'served at once while refreshing');
    await new Promise((r) => setTimeout(r, 200));
    t.equal(calls.length, 2, 'refreshed');
    const refreshed = await registry.get(p);
    t.not(refreshed, first, 'the refreshed configuration replaces the old one');

  });

  t.test('a provider that fails after working keeps its last configuration', async (t) => {
    const other = await startIdp({
      clients: [{ client_id: 'gone-web', client_secret: SECRET, redirect_uris: ['http://127.0.0.1:1/cb'] }],
      users: {},
    });
    let now = 5_000_000;
    const log = logger();
    const registry = new ClientRegistry({ httpTimeoutMs: 1000, insecureAllowPrivateProviders: true, retryMaxSeconds: 60, refreshSeconds: 100, now: () => now, log });
    t.teardown(() => registry.close());
    const p = provider('gone-web', { issuer: other.issuer });
    const working = await registry.get(p);
    await other.close();
    now += 100_000;
    t.equal(await registry.get(p), working, 'served while the refresh runs');
    await new Promise((r) => setTimeout(r, 300));
    t.equal(log.entries.length, 1, 'the failed refresh is logged');
    t.match(log.entries[0]!.obj, { clientId: 'gone-web', stale: true });
    t.equal(await registry.get(p), working, 'still served after the refresh failed');
  });
});

t.test('insecure or unusable providers are refused before any request', async (t) => {
  const { calls, fetch } = countingFetch();
  const registry = new ClientRegistry({ httpTimeoutMs: 500, retryMaxSeconds: 60, fetch });
  const cases: Array<[string, Partial<Provider['configuration']>, RegExp]> = [
    ['http issuer on a public host', { issuer: 'http://kc.acme.com/realms/acme' }, /https is required/],
    [
      'http Keycloak endpoint on a public host',
      { authorization_endpoint: 'http://kc.acme.com/realms/acme/protocol/openid-connect/auth' },
      /https is required/,
    ],
    [
      'http token endpoint on a public host',
      { issuer: 'https://kc.acme.com/realms/a', token_endpoint: 'http://kc.acme.com/token' },
      /token_endpoint http:\/\/kc\.acme\.com\/token .*https is required/,
    ],
    ['loopback issuer', { issuer: 'https://127.0.0.1:1/realms/a' }, /loopback, private or link-local/],
    ['link-local token endpoint', { issuer: 'https://kc.acme.com/realms/a', token_endpoint: 'https://169.254.169.254/token' }, /loopback, private or link-local/],
    ['no issuer at all', { authorization_endpoint: 'https://login.example.com/authorize' }, /no issuer/],
  ];
  for (const [label, cfg, detail] of cases) {
    const err = await registry.get(provider(`c-${label.replace(/\W/g, '')}`, cfg)).catch((e: unknown) => e);
    t.type(err, GatewayError, label);
    t.equal((err as GatewayError).statusCode, 502, label);
    t.equal((err as GatewayError).code, ErrorCodes.PROVIDER_MISCONFIGURED, label);
    t.match((err as GatewayError).detail, detail, label);
  }
  t.same(calls, [], 'no request was made');
});

t.test('discovered endpoints are pinned to the issuer unless the configuration lists them', async (t) => {
  const idp = await startIdp({ clients: [{ client_id: 'pinned', client_secret: SECRET, redirect_uris: ['https://a.example.com/cb'] }], users: {} });
  t.teardown(() => idp.close());
  const elsewhere = 'http://127.0.0.1:29591/internal/do-something';
  // The same provider, reached through a front that rewrites its discovery document.
  const intercepting = ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith('/.well-known/openid-configuration')) {
      return fetch(url).then(async (r) => {
        const body = (await r.json()) as Record<string, unknown>;
        return new Response(JSON.stringify({ ...body, token_endpoint: elsewhere, userinfo_endpoint: elsewhere }), { headers: { 'content-type': 'application/json' } });
      });
    }
    return fetch(input, init);
  }) as typeof fetch;
  const log = logger();
  const registry = new ClientRegistry({ httpTimeoutMs: 2000, insecureAllowPrivateProviders: true, retryMaxSeconds: 60, fetch: intercepting, log });
  t.teardown(() => registry.close());
  const err = await registry.get(provider('pinned', { issuer: idp.issuer })).catch((e: unknown) => e);
  t.equal((err as GatewayError).statusCode, 502);
  t.match((err as GatewayError).detail, /discovered token_endpoint http:\/\/127\.0\.0\.1:29591\/internal\/do-something is not on the issuer's origin/);
  t.match(JSON.stringify(log.entries), /identity provider configuration failed/);

  const listed = await registry.client(provider('pinned', { issuer: idp.issuer, token_endpoint: idp.url('/token') }, 2));
  t.equal(listed.config.serverMetadata().token_endpoint, idp.url('/token'), 'a listed endpoint is used');
  t.equal(listed.config.serverMetadata().userinfo_endpoint, undefined, 'an optional off-origin endpoint is dropped');
  t.match(JSON.stringify(log.entries), /discovered endpoint refused.*userinfo_endpoint|userinfo_endpoint.*discovered endpoint refused/);
});

t.test('host names are checked after DNS resolution', async (t) => {
  const { hostname } = await import('node:os');
  const { lookup } = await import('node:dns/promises');
  const name = hostname();
  const resolved = await lookup(name).catch(() => undefined);
  const { isPublicAddress } = await import('../../src/tenancy/provider-url.js');
  if (!resolved || isPublicAddress(resolved.address)) {
    t.pass(`${name} does not resolve to a private address here: nothing to check`);
    return;
  }
  const { createProviderFetch } = await import('../../src/oidc/provider-fetch.js');
  const strict = createProviderFetch({ timeoutMs: 2000, insecureAllowPrivate: false });
  t.teardown(() => strict.close());
  const err = (await strict.fetch(`https://${name}:9443/.well-known/openid-configuration`).catch((e: unknown) => e)) as Error;
  t.match(String((err as { cause?: { message?: string } }).cause?.message ?? err.message), /not a public address/, `${name} -> ${resolved.address} refused`);
});
