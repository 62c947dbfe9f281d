import t from 'tap';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import type { CompanySso, Provider } from '../../src/directory/types.js';
import { ClientRegistry } from '../../src/oidc/client-registry.js';
import { buildEndSessionUrl, finishLogin, FlowError, revokeTokens, startLogin } from '../../src/oidc/flow.js';
import { claimsToIdentity } from '../../src/oidc/identity.js';
import { loginAtIdp, startIdp } from '../helpers/idp.js';

const SECRET = 'acme-web-client-secret';
const REDIRECT = 'https://acme.ml.example.com/callback_acme-web';
const POST_LOGOUT = 'https://acme.ml.example.com/login/acme';

const idp = await startIdp({
  clients: [
    { client_id: 'acme-web', client_secret: SECRET, redirect_uris: [REDIRECT], post_logout_redirect_uris: [POST_LOGOUT] },
  ],
  users: {
    alice: {
      email: 'alice@acme.com',
      email_verified: true,
      name: 'Alice Liddell',
      tenant_key: 'acme',
      ad_groups_trusted: ['IDP group name1', 'IDP admin group name1'],
    },
  },
});
t.teardown(() => idp.close());

const acmeProvider: Provider = {
  company: 'company-acme',
  provider: 'keycloak',
  updatedAt: 1,
  configuration: {
    id: 'acme',
    client_id: 'acme-web',
    client_secret: SECRET,
    issuer: idp.issuer,
    logout_from_provider: true,
    claim_tenant: 'tenant_key',
    claim_name: 'name',
    group_enabled: true,
    claim_groups: 'ad_groups_trusted',
    group_prohibit_user_login_if_not_in_group: true,
  },
};
const acmeCompany: CompanySso = {
  tenant: 'acme',
  group_mapping: { 'IDP group name1': 'Clearml group name1' },
  admin_groups: ['IDP admin group name1'],
  groups: [],
  domains: [],
  hosts: [],
};

const registry = new ClientRegistry({ httpTimeoutMs: 2000, retryMaxSeconds: 60, insecureAllowPrivateProviders: true });
t.teardown(() => registry.close());
const client = await registry.client(acmeProvider);
const config = client.config;
const SCOPES = ['openid', 'profile', 'email'];

/** Starts a login and walks alice through the provider's pages. */
async function login() {
  const { url, transaction } = await startLogin(config, { redirectUri: REDIRECT, scopes: SCOPES });
  const { callbackUrl } = await loginAtIdp(url, 'alice');
  return { url, transaction, callback: new URL(callbackUrl) };
}

/** Server metadata of a configuration, without its helper methods. */
function metadataOf(c: oidc.Configuration): oidc.ServerMetadata {
  const { supportsPKCE: _helper, ...metadata } = c.serverMetadata();
  return metadata;
}

async function flowError(p: Promise<unknown>): Promise<FlowError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof FlowError)) throw new Error(`expected a FlowError, got ${String(err)}`);
  return err;
}

t.test('the authorization request carries PKCE S256, state, nonce and openid', async (t) => {
  const { url, transaction } = await startLogin(config, { redirectUri: REDIRECT, scopes: ['profile', 'email'], loginHint: 'alice@acme.com' });
  const u = new URL(url);
  t.equal(u.origin + u.pathname, idp.url('/auth'));
  const q = u.searchParams;
  t.equal(q.get('response_type'), 'code');
  t.equal(q.get('client_id'), 'acme-web');
  t.equal(q.get('redirect_uri'), REDIRECT);
  t.same(q.get('scope')?.split(' '), ['openid', 'profile', 'email'], 'openid added first');
  t.equal(q.get('state'), transaction.state);
  t.equal(q.get('nonce'), transaction.nonce);
  t.equal(q.get('code_challenge_method'), 'S256');
  t.equal(q.get('code_challenge'), await oidc.calculatePKCECodeChallenge(transaction.codeVerifier));
  t.equal(q.get('login_hint'), 'alice@acme.com');
  t.notMatch(url, transaction.codeVerifier, 'the verifier stays with the gateway');
  const other = await startLogin(config, { redirectUri: REDIRECT, scopes: SCOPES });
  t.not(other.transaction.state, transaction.state);
  t.not(other.transaction.nonce, transaction.nonce);
  t.not(other.transaction.codeVerifier, transaction.codeVerifier);
});

t.test('a full code flow gives the tenant and group claims, and an identity', async (t) => {
  const { transaction, callback } = await login();
  t.equal(callback.origin + callback.pathname, REDIRECT, 'the provider redirected to the callback');
  t.equal(callback.searchParams.get('iss'), idp.issuer);
  const result = await finishLogin(client, { callbackUrl: callback, transaction, expectedRedirectUri: REDIRECT });
  t.equal(result.claims['sub'], 'alice');
  t.equal(result.claims['tenant_key'], 'acme');
  t.same(result.claims['ad_groups_trusted'], ['IDP group name1', 'IDP admin group name1']);
  t.equal(result.claims['email'], 'alice@acme.com');
  t.equal(result.claims['name'], 'Alice Liddell');
  t.equal(result.claims['nonce'], transaction.nonce);
  t.match(result.idToken, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  t.type(result.accessToken, 'string');

  const identity = claimsToIdentity(result.claims, acmeProvider.configuration, acmeCompany);
  t.same(identity, {
    ok: true,
    identity: {
      subject: 'alice',
      issuer: idp.issuer,
      email: 'alice@acme.com',
      name: 'Alice Liddell',
      tenant: 'acme',
      groups: ['Clearml group name1'],
      admin: true,
    },
    idpGroups: ['IDP group name1', 'IDP admin group name1'],
  });
});

t.test('a tampered state is refused before the code is redeemed', async (t) => {
  const { transaction, callback } = await login();
  const tampered = new URL(callback);
  tampered.searchParams.set('state', `${transaction.state.slice(0, -1)}x`);
  const tokenHits = idp.hits.get('/token') ?? 0;
  const err = await flowError(finishLogin(client, { callbackUrl: tampered, transaction, expectedRedirectUri: REDIRECT }));
  t.equal(err.reason, 'state_mismatch');
  t.equal(err.statusCode, 400);
  t.equal(idp.hits.get('/token') ?? 0, tokenHits, 'nothing sent to the token endpoint');

  const missing = new URL(callback);
  missing.searchParams.delete('state');
  t.equal((await flowError(finishLogin(client, { callbackUrl: missing, transaction, expectedRedirectUri: REDIRECT }))).reason, 'state_mismatch');

  const result = await finishLogin(client, { callbackUrl: callback, transaction, expectedRedirectUri: REDIRECT });
  t.equal(result.claims['sub'], 'alice', 'the genuine callback still works');
});

t.test('a state from another login is refused', async (t) => {
  const first = await login();
  const second = await login();
  const err = await flowError(
    finishLogin(client, { callbackUrl: first.callback, transaction: second.transaction, expectedRedirectUri: REDIRECT }),
  );
  t.equal(err.reason, 'state_mismatch');
});

t.test('a replayed code is refused', async (t) => {
  const { transaction, callback } = await login();
  await finishLogin(client, { callbackUrl: callback, transaction, expectedRedirectUri: REDIRECT });
  const err = await flowError(finishLogin(client, { callbackUrl: callback, transaction, expectedRedirectUri: REDIRECT }));
  t.equal(err.reason, 'invalid_grant');
  t.equal(err.statusCode, 400);
  t.equal(err.oauthError, 'invalid_grant');
  t.notMatch(err.detail, callback.searchParams.get('code')!, 'the code is not in the logged detail');
});

t.test('a wrong nonce is refused', async (t) => {
  const { transaction, callback } = await login();
  const err = await flowError(
    finishLogin(client, {
      callbackUrl: callback,
      transaction: { ...transaction, nonce: oidc.randomNonce() },
      expectedRedirectUri: REDIRECT,
    }),
  );
  t.equal(err.reason, 'nonce_mismatch');
  t.equal(err.statusCode, 400);
});

t.test('a wrong PKCE verifier is refused by the provider', async (t) => {
  const { transaction, callback } = await login();
  const err = await flowError(
    finishLogin(client, {
      callbackUrl: callback,
      transaction: { ...transaction, codeVerifier: oidc.randomPKCECodeVerifier() },
      expectedRedirectUri: REDIRECT,
    }),
  );
  t.equal(err.reason, 'invalid_grant');
});

t.test('a callback naming another issuer is refused', async (t) => {
  const { transaction, callback } = await login();
  const mixedUp = new URL(callback);
  mixedUp.searchParams.set('iss', 'https://evil.example.com');
  const err = await flowError(finishLogin(client, { callbackUrl: mixedUp, transaction, expectedRedirectUri: REDIRECT }));
  t.equal(err.reason, 'bad_callback');
  t.equal(err.statusCode, 400);
});

t.test('malformed callbacks are refused', async (t) => {
  const { transaction, callback } = await login();
  const otherHost = new URL(callback);
  otherHost.host = 'globex.ml.example.com';
  t.equal(
    (await flowError(finishLogin(client, { callbackUrl: otherHost, transaction, expectedRedirectUri: REDIRECT }))).reason,
    'bad_callback',
    'callback on another redirect URI',
  );
  const noCode = new URL(callback);
  noCode.searchParams.delete('code');
  t.equal((await flowError(finishLogin(client, { callbackUrl: noCode, transaction, expectedRedirectUri: REDIRECT }))).reason, 'bad_callback');
  const twoCodes = new URL(callback);
  twoCodes.searchParams.append('code', 'another');
  t.equal((await flowError(finishLogin(client, { callbackUrl: twoCodes, transaction, expectedRedirectUri: REDIRECT }))).reason, 'bad_callback');
});

t.test('an error from the provider in the callback', async (t) => {
  const { transaction } = await startLogin(config, { redirectUri: REDIRECT, scopes: SCOPES });
  const denied = new URL(REDIRECT);
  denied.search = new URLSearchParams({ error: 'access_denied', error_description: 'End-User aborted interaction', state: transaction.state, iss: idp.issuer }).toString();
  const err = await flowError(finishLogin(client, { callbackUrl: denied, transaction, expectedRedirectUri: REDIRECT }));
  t.equal(err.reason, 'provider_error');
  t.equal(err.statusCode, 400);
  t.equal(err.oauthError, 'access_denied');

  const busy = new URL(REDIRECT);
  busy.search = new URLSearchParams({ error: 'temporarily_unavailable', state: transaction.state }).toString();
  const unavailable = await flowError(finishLogin(client, { callbackUrl: busy, transaction, expectedRedirectUri: REDIRECT }));
  t.equal(unavailable.reason, 'provider_unavailable');
  t.equal(unavailable.statusCode, 503);

  const forged = new URL(REDIRECT);
  forged.search = new URLSearchParams({ error: 'access_denied', state: 'forged' }).toString();
  t.equal((await flowError(finishLogin(client, { callbackUrl: forged, transaction, expectedRedirectUri: REDIRECT }))).reason, 'state_mismatch');
});

t.test('an unreachable token endpoint is a 503', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const brokenRegistry = new ClientRegistry({ httpTimeoutMs: 1000, retryMaxSeconds: 60, insecureAllowPrivateProviders: true });
  t.teardown(() => brokenRegistry.close());
  const broken = await brokenRegistry.client({
    ...acmeProvider,
    configuration: { ...acmeProvider.configuration, token_endpoint: `http://127.0.0.1:${port}/token` },
  });
  const { transaction, callback } = await login();
  const err = await flowError(finishLogin(broken, { callbackUrl: callback, transaction, expectedRedirectUri: REDIRECT }));
  t.equal(err.reason, 'provider_unavailable');
  t.equal(err.statusCode, 503);
});

t.test('end-session URL', async (t) => {
  const url = buildEndSessionUrl(config, { idTokenHint: 'id.token.value', postLogoutRedirectUri: POST_LOGOUT, clientId: 'acme-web' });
  t.ok(url);
  const u = new URL(url!);
  t.equal(u.origin + u.pathname, idp.url('/session/end'));
  t.equal(u.searchParams.get('id_token_hint'), 'id.token.value');
  t.equal(u.searchParams.get('client_id'), 'acme-web');
  t.equal(u.searchParams.get('post_logout_redirect_uri'), POST_LOGOUT);

  const withoutHint = new URL(buildEndSessionUrl(config, { postLogoutRedirectUri: POST_LOGOUT, clientId: 'acme-web' })!);
  t.equal(withoutHint.searchParams.has('id_token_hint'), false);

  const { end_session_endpoint: _omit, ...meta } = metadataOf(config);
  const noLogout = new oidc.Configuration(meta, 'acme-web', SECRET);
  t.equal(buildEndSessionUrl(noLogout, { postLogoutRedirectUri: POST_LOGOUT, clientId: 'acme-web' }), undefined);
});

t.test('the provider accepts the end-session URL built after a login', async (t) => {
  const { transaction, callback } = await login();
  const result = await finishLogin(client, { callbackUrl: callback, transaction, expectedRedirectUri: REDIRECT });
  const url = buildEndSessionUrl(config, { idTokenHint: result.idToken, postLogoutRedirectUri: POST_LOGOUT, clientId: 'acme-web' })!;
  const res = await fetch(url, { redirect: 'manual' });
  const body = await res.text();
  t.equal(res.status, 200, 'the logout confirmation page, not an error');
  t.notMatch(body, /error/i);
});

t.test('revokeTokens revokes at the provider, and never throws', async (t) => {
  const { transaction, callback } = await login();
  const result = await finishLogin(client, { callbackUrl: callback, transaction, expectedRedirectUri: REDIRECT });
  const accessToken = result.accessToken!;
  await t.resolves(oidc.fetchUserInfo(config, accessToken, 'alice'), 'the access token works before');
  t.equal(await revokeTokens(config, { accessToken }, 2000), 1);
  await t.rejects(oidc.fetchUserInfo(config, accessToken, 'alice'), 'and not after');

  const dead = new oidc.Configuration(
    { ...metadataOf(config), revocation_endpoint: 'http://127.0.0.1:1/revoke' },
    'acme-web',
    SECRET,
  );
  oidc.allowInsecureRequests(dead);
  t.equal(await revokeTokens(dead, { accessToken: 'x', refreshToken: 'y' }, 1000), 0, 'unreachable endpoint: nothing revoked, no throw');
  t.equal(await revokeTokens(config, {}, 1000), 0, 'nothing to revoke');
});
