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

t.test('loopback and https rules for provider URLs', async (t) => {
  for (const url of ['http://LOCALHOST:9/x', 'http://[::1]/x', 'http://127.1.2.3/x']) t.equal(checkProviderUrl(url), undefined, url);
  for (const url of ['http://128.0.0.1/x', 'http://localhost.example.com/x', 'http://[::2]/x', 'http://0.0.0.0/x']) {
    t.match(checkProviderUrl(url), /https is required/, url);
  }
  t.match(checkProviderUrl('https://u:p@kc.example.com/'), /credentials/);
  t.equal(checkProviderUrl('https://kc.example.com/realms/a'), undefined);
  t.equal(checkProviderUrl('http://127.0.0.1:8080/realms/a'), undefined);
  t.match(checkProviderUrl('http://kc.example.com/realms/a'), /https is required/);
  t.match(checkProviderUrl('http://127.0.0.1.nip.io/realms/a'), /https is required/);
  t.match(checkProviderUrl('ftp://127.0.0.1/x'), /scheme/);
  t.match(checkProviderUrl('nope'), /not a URL/);
});

t.test('against a real identity provider', async (t) => {
  const idp = await startIdp({
    clients: [{ client_id: 'acme-web', client_secret: SECRET, redirect_uris: ['http://127.0.0.1:1/callback_acme-web'] }],
    users: {},
  });
  t.teardown(() => idp.close());
  const wellKnown = '/.well-known/openid-configuration';

  t.test('discovers the issuer and its endpoints, once for concurrent callers', async (t) => {
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, retryMaxSeconds: 60 });
    const before = idp.hits.get(wellKnown) ?? 0;
    const p = provider('acme-web', { issuer: idp.issuer });
    const [a, b, c] = await Promise.all([registry.get(p), registry.get(p), registry.get(p)]);
    t.equal(a, b);
    t.equal(b, c);
    t.equal((idp.hits.get(wellKnown) ?? 0) - before, 1, 'one discovery request');
    const meta = a!.serverMetadata();
    t.equal(meta.issuer, idp.issuer);
    t.equal(meta.token_endpoint, idp.url('/token'));
    t.equal(meta.end_session_endpoint, idp.url('/session/end'));
    t.equal(a!.clientMetadata().client_id, 'acme-web');
    t.equal(await registry.get(p), a, 'cached');
    t.equal((idp.hits.get(wellKnown) ?? 0) - before, 1, 'no request for a cached configuration');
  });

  t.test('a changed provider record or invalidate() rediscovers', async (t) => {
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, retryMaxSeconds: 60 });
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
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, retryMaxSeconds: 60 });
    const err = await registry.get(provider('acme-web', { authorization_endpoint: idp.url('/auth') })).catch((e: unknown) => e);
    t.type(err, GatewayError);
    t.match((err as GatewayError).detail, /no issuer/);
  });

  t.test('saved endpoints win over discovered ones', async (t) => {
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, retryMaxSeconds: 60 });
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
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, retryMaxSeconds: 4, now: () => now, fetch, log });
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
    const registry = new ClientRegistry({ httpTimeoutMs: 300, retryMaxSeconds: 60 });
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
    const registry = new ClientRegistry({ httpTimeoutMs: 2000, retryMaxSeconds: 60, refreshSeconds: 100, now: () => now, fetch });
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
    const registry = new ClientRegistry({ httpTimeoutMs: 1000, retryMaxSeconds: 60, refreshSeconds: 100, now: () => now, log });
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
      { issuer: 'http://127.0.0.1:1/realms/a', token_endpoint: 'http://kc.acme.com/token' },
      /token_endpoint http:\/\/kc\.acme\.com\/token .*https is required/,
    ],
    ['no issuer at all', { authorization_endpoint: 'https://login.example.com/authorize' }, /no issuer/],
  ];
  for (const [label, cfg, detail] of cases) {
    const err = await registry.get(provider(`c-${label.replace(/\W/g, '')}`, cfg)).catch((e: unknown) => e);
    t.type(err, GatewayError, label);
    t.equal((err as GatewayError).statusCode, 503, label);
    t.match((err as GatewayError).detail, detail, label);
  }
  t.same(calls, [], 'no request was made');
});
