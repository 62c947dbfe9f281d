/**
 * What independent providers need, against a real oidc-provider: ID token signatures
 * always verified (wrong key, rotation, `none`, HS256), every client authentication
 * method (client IDs with unreserved characters included), claims from userinfo.
 */
import t, { type Test } from 'tap';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as jose from 'jose';
import type { Provider } from '../../src/directory/types.js';
import { loadClientAssertionKey } from '../../src/oidc/client-assertion-key.js';
import { ClientRegistry, chooseAuthMethod, encodeBasicCredential, type ClientRegistryOptions } from '../../src/oidc/client-registry.js';
import { finishLogin, FlowError, startLogin } from '../../src/oidc/flow.js';
import { JwtCheckError, ProviderKeys, verifyProviderJwt } from '../../src/oidc/jwks.js';
import { tempDir } from '../helpers/gateway.js';
import { loginAtIdp, newSigningKey, startIdp, type IdpClient, type StartIdpOptions } from '../helpers/idp.js';

const SECRET = 'compat-client-secret-0123456789';
const ODD_ID = 'umbrella-client_x.y~z';
const SCOPES = ['openid', 'profile', 'email'];
const ALICE = { alice: { email: 'alice@acme.com', email_verified: true, name: 'Alice', tenant_key: 'acme', groups: ['g1'] } };

const redirectOf = (clientId: string) => `https://acme.ml.example.com/callback_${clientId}`;
const idpClient = (clientId: string, extra: Partial<IdpClient> = {}): IdpClient => ({
  client_id: clientId,
  client_secret: SECRET,
  redirect_uris: [redirectOf(clientId)],
  ...extra,
});
const providerOf = (issuer: string, clientId: string, extra: Partial<Provider['configuration']> = {}): Provider => ({
  company: `c-${clientId}`,
  provider: 'keycloak',
  updatedAt: 1,
  configuration: { id: clientId, client_id: clientId, client_secret: SECRET, issuer, claim_tenant: 'tenant_key', ...extra },
});

function registryFor(t: Test, extra: Partial<ClientRegistryOptions> = {}) {
  const registry = new ClientRegistry({ httpTimeoutMs: 3000, retryMaxSeconds: 1, insecureAllowPrivateProviders: true, ...extra });
  t.teardown(() => registry.close());
  return registry;
}

async function idpFor(t: Test, opts: Partial<StartIdpOptions> & { clients: IdpClient[] }) {
  const idp = await startIdp({ users: ALICE, ...opts });
  t.teardown(() => idp.close());
  return idp;
}

async function login(registry: ClientRegistry, provider: Provider) {
  const client = await registry.client(provider);
  const redirectUri = redirectOf(provider.configuration.client_id);
  const { url, transaction } = await startLogin(client.config, { redirectUri, scopes: SCOPES });
  const { callbackUrl } = await loginAtIdp(url, 'alice');
  return finishLogin(client, { callbackUrl: new URL(callbackUrl), transaction, expectedRedirectUri: redirectUri });
}

async function refused(p: Promise<unknown>): Promise<FlowError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof FlowError)) throw new Error(`expected a FlowError, got ${String(err)}`);
  return err;
}

function publicJwk(privateJwk: object): object {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = privateJwk as Record<string, unknown>;
  return pub;
}

t.test('an ID token signed with a key the provider does not publish is refused', async (t) => {
  const signing = newSigningKey() as { kid: string };
  const impostor = { ...newSigningKey(), kid: signing.kid };
  const idp = await idpFor(t, {
    clients: [idpClient('wrong-key')],
    signingKeys: [signing],
    intercept: (req, res) => {
      if (req.url !== '/jwks') return false;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk(impostor)] }));
      return true;
    },
  });
  const err = await refused(login(registryFor(t), providerOf(idp.issuer, 'wrong-key')));
  t.equal(err.reason, 'bad_token');
  t.equal(err.statusCode, 400);
  t.match(err.detail, /signature/);
});

t.test("a provider's key rotation mid-run costs no failed login, and made-up kids cost one fetch per cooldown", async (t) => {
  const first = newSigningKey();
  const idp = await idpFor(t, { clients: [idpClient('rotating')], signingKeys: [first] });
  const registry = registryFor(t, { jwksRefetchCooldownMs: 60_000 });
  const provider = providerOf(idp.issuer, 'rotating');
  t.equal((await login(registry, provider)).claims['sub'], 'alice');
  const keys = (await registry.client(provider)).keys;
  t.equal(keys.fetches, 1, 'the JWKS was fetched once');

  idp.rotate([newSigningKey(), first]);
  t.equal((await login(registry, provider)).claims['sub'], 'alice', 'a token signed with the new key is accepted');
  t.equal(keys.fetches, 2, 'the unknown kid refetched the JWKS once');
  await login(registry, provider);
  t.equal(keys.fetches, 2, 'a known kid needs no fetch');

  const stranger = await new jose.SignJWT({ sub: 'x' })
    .setProtectedHeader({ alg: 'RS256', kid: 'made-up' })
    .setIssuer(idp.issuer)
    .setAudience('rotating')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  const fakeKeys = new ProviderKeys({ jwksUri: idp.url('/jwks'), fetch, refetchCooldownMs: 60_000 });
  for (let i = 0; i < 5; i++) {
    const refused = await verifyProviderJwt(stranger, { keys: fakeKeys, issuer: idp.issuer, audience: 'rotating' }).then(() => undefined, (err: unknown) => err);
    t.match(refused, { reason: 'no_matching_key' }, 'a key nobody published is refused');
  }
  t.equal(fakeKeys.fetches, 2, 'five unknown kids: the first load and one refetch');
});

t.test('`none` and HS256 signed with the public key are refused; HS256 only when configured', async (t) => {
  const signing = newSigningKey();
  const pem = createPublicKey({ key: publicJwk(signing) as never, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString();
  let forge: ((payload: jose.JWTPayload) => Promise<string>) | undefined;
  const rewriting = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const res = await fetch(input, init);
    if (!forge || !(input instanceof Request ? input.url : input.toString()).endsWith('/token')) return res;
    const body = (await res.json()) as Record<string, unknown>;
    body['id_token'] = await forge(jose.decodeJwt(body['id_token'] as string));
    return new Response(JSON.stringify(body), { status: res.status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  const idp = await idpFor(t, {
    clients: [idpClient('forged'), idpClient('hs-client', { id_token_signed_response_alg: 'HS256' })],
    signingKeys: [signing],
  });
  const registry = registryFor(t, { fetch: rewriting });
  const provider = providerOf(idp.issuer, 'forged');

  forge = async (payload) => `${jose.base64url.encode(JSON.stringify({ alg: 'none' }))}.${jose.base64url.encode(JSON.stringify(payload))}.`;
  t.equal((await refused(login(registry, provider))).reason, 'bad_token', '`none` refused');
  forge = (payload) => new jose.SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: (signing as { kid: string }).kid }).sign(new TextEncoder().encode(pem));
  t.equal((await refused(login(registry, provider))).reason, 'bad_token', 'HS256 keyed by the public key refused');
  forge = undefined;
  t.equal((await login(registry, provider)).claims['sub'], 'alice', 'the genuine token passes');

  const hs = providerOf(idp.issuer, 'hs-client');
  t.equal((await refused(login(registry, hs))).reason, 'bad_token', 'HS256 from the provider refused when not asked for');
  const hsAllowed = providerOf(idp.issuer, 'hs-client', { id_token_signed_response_alg: 'HS256' });
  t.equal((await login(registry, hsAllowed)).claims['sub'], 'alice', 'HS256 keyed by the client secret, when configured');

  const unsecured = new jose.UnsecuredJWT({ sub: 'x' }).setIssuer(idp.issuer).setAudience('forged').setIssuedAt().setExpirationTime('5m').encode();
  const keys = new ProviderKeys({ jwksUri: idp.url('/jwks'), fetch });
  for (const algorithms of [undefined, ['none'], ['HS256']]) {
    await t.rejects(verifyProviderJwt(unsecured, { keys, issuer: idp.issuer, audience: 'forged', ...(algorithms ? { algorithms } : {}), clientSecret: SECRET }), JwtCheckError);
  }
});

t.test('client authentication: basic and post with unreserved characters, private_key_jwt, none with PKCE', async (t) => {
  const dir = tempDir(t);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = join(dir, 'assertion.pem');
  writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const assertion = await loadClientAssertionKey(keyFile);
  const seen: Array<{ authorization?: string }> = [];
  const idp = await idpFor(t, {
    clients: [
      idpClient(ODD_ID),
      idpClient(`${ODD_ID}-post`, { token_endpoint_auth_method: 'client_secret_post' }),
      { client_id: 'pkjwt', redirect_uris: [redirectOf('pkjwt')], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: assertion.kid }] } },
      { client_id: 'public-spa', redirect_uris: [redirectOf('public-spa')], token_endpoint_auth_method: 'none' },
    ],
    intercept: (req) => {
      if (req.url === '/token') seen.push({ ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
      return false;
    },
  });
  const registry = registryFor(t, { clientAssertionKey: assertion });

  const basic = providerOf(idp.issuer, ODD_ID, { token_endpoint_auth_method: 'client_secret_basic' });
  t.equal((await login(registry, basic)).claims['sub'], 'alice', 'basic');
  const sent = Buffer.from(seen.at(-1)!.authorization!.replace(/^Basic /, ''), 'base64').toString();
  t.equal(sent, `${ODD_ID}:${SECRET}`, 'unreserved characters are sent as they are');
  t.equal((await registry.client(basic)).authMethod, 'client_secret_basic');

  const post = providerOf(idp.issuer, `${ODD_ID}-post`, { token_endpoint_auth_method: 'client_secret_post' });
  t.equal((await login(registry, post)).claims['sub'], 'alice', 'post');
  t.equal(seen.at(-1)!.authorization, undefined, 'no Authorization header with post');

  const pk = providerOf(idp.issuer, 'pkjwt', { token_endpoint_auth_method: 'private_key_jwt' });
  delete pk.configuration.client_secret;
  t.equal((await login(registry, pk)).claims['sub'], 'alice', 'private_key_jwt');

  const pub = providerOf(idp.issuer, 'public-spa');
  delete pub.configuration.client_secret;
  t.equal((await registryFor(t).client(pub)).authMethod, 'none', 'no secret, no key, no method: a public client');
  pub.configuration.token_endpoint_auth_method = 'none';
  t.equal((await login(registry, pub)).claims['sub'], 'alice', 'none with PKCE');

  const wrong = providerOf(idp.issuer, ODD_ID, { client_secret: 'not-the-secret', token_endpoint_auth_method: 'client_secret_post' });
  const err = await refused(login(registry, wrong));
  t.equal(err.statusCode, 502, 'wrong credentials are a misconfiguration, not "try again"');
  t.equal(err.oauthError, 'invalid_client');
});

t.test('default client authentication and Basic encoding', async (t) => {
  t.equal(chooseAuthMethod({ client_secret: 's' }, undefined, false), 'client_secret_basic');
  t.equal(chooseAuthMethod({ client_secret: 's' }, ['private_key_jwt', 'client_secret_post'], false), 'client_secret_post');
  t.equal(chooseAuthMethod({ client_secret: 's' }, ['private_key_jwt', 'client_secret_post', 'client_secret_basic'], true), 'client_secret_basic');
  t.equal(chooseAuthMethod({}, ['client_secret_basic', 'private_key_jwt'], true), 'private_key_jwt');
  t.equal(chooseAuthMethod({}, ['client_secret_basic', 'none'], false), 'none');
  t.equal(chooseAuthMethod({ client_secret: 's', token_endpoint_auth_method: 'client_secret_post' }, ['client_secret_basic'], false), 'client_secret_post');
  t.equal(encodeBasicCredential('a-b_c.d~e'), 'a-b_c.d~e');
  t.equal(encodeBasicCredential("a:b c!'()*%+/é"), 'a%3Ab%20c%21%27%28%29%2A%25%2B%2F%C3%A9');
});

t.test('claims from userinfo when the ID token lacks them', async (t) => {
  let infoCalls = 0;
  const idp = await idpFor(t, {
    clients: [idpClient('ui-client')],
    claimsAtUserinfo: true,
    intercept: (req) => {
      if (req.url?.startsWith('/me')) infoCalls += 1;
      return false;
    },
  });
  const registry = registryFor(t);
  const both = await login(registry, providerOf(idp.issuer, 'ui-client'));
  t.equal(both.claims['tenant_key'], 'acme', 'the tenant claim came from userinfo');
  t.equal(both.claims['email'], 'alice@acme.com');
  t.equal(both.claims['iss'], idp.issuer, "the token's own claims stay");
  t.equal(infoCalls, 1);

  const idOnly = await login(registry, providerOf(idp.issuer, 'ui-client', { claims_source: 'id_token' }));
  t.equal(idOnly.claims['tenant_key'], undefined, 'claims_source id_token never calls userinfo');
  t.equal(infoCalls, 1);
});

t.test('userinfo is not called when the ID token has every configured claim', async (t) => {
  let infoCalls = 0;
  const idp = await idpFor(t, {
    clients: [idpClient('full-token')],
    intercept: (req) => {
      if (req.url?.startsWith('/me')) infoCalls += 1;
      return false;
    },
  });
  const registry = registryFor(t);
  t.equal((await login(registry, providerOf(idp.issuer, 'full-token', { group_enabled: true }))).claims['tenant_key'], 'acme');
  t.equal(infoCalls, 0);
  await login(registry, providerOf(idp.issuer, 'full-token', { claims_source: 'userinfo' }));
  t.equal(infoCalls, 1, 'claims_source userinfo always calls it');
});
