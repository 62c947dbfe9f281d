/**
 * The authorization code flow over openid-client, as small functions.
 *
 * Rules:
 * - Every login uses PKCE (S256), `state` and `nonce`; `openid` is always requested.
 * - The callback's `state` is compared with the transaction's before anything is
 *   sent to the provider; a callback for another redirect URI is refused too.
 * - The token request carries the redirect URI of the transaction, whatever host the
 *   callback arrived on; an ID token is required; openid-client checks `iss`
 *   (response parameter and ID token), `aud`, expiry and `nonce`; the signature is
 *   verified here against the provider's JWKS ({@link verifyProviderJwt}: asymmetric
 *   algorithms only, HS256 only when the provider configuration asks for it).
 * - Claims (`claims_source`, default `both`): with `both`, when the ID token lacks a
 *   claim the configuration reads (tenant, name, email, groups when enabled) and the
 *   provider has a userinfo endpoint, userinfo is called with the access token and its
 *   claims fill what the ID token lacks; with `userinfo` it is always called and its
 *   claims win over the ID token's, except the token's own (`iss`, `aud`, `exp`, ...).
 *   Userinfo's `sub` must equal the ID token's.
 * - Failures become a {@link FlowError}: 400 for a callback that is forged, replayed,
 *   stale or refused by the provider; 502 when the saved configuration cannot work
 *   (`invalid_client`, `unauthorized_client`); 503 when the provider fails.
 *   Its `detail` names the check that failed, never a code or a token.
 */
import { timingSafeEqual } from 'node:crypto';
import * as oidc from 'openid-client';
import { ErrorCodes, GatewayError } from '../errors.js';
import type { ProviderClient } from './client-registry.js';
import { DEFAULT_CLAIMS, readClaim } from './identity.js';
import { JwtCheckError, verifyProviderJwt } from './jwks.js';

/** What must survive, sealed, between the authorization request and the callback. */
export interface LoginTransaction {
  codeVerifier: string;
  state: string;
  nonce: string;
}

/** Why a callback failed. */
export type FlowErrorReason =
  /** `state` missing or not the transaction's: forged or crossed callback. */
  | 'state_mismatch'
  /** The ID token's `nonce` is not the transaction's: replayed or injected token. */
  | 'nonce_mismatch'
  /** The callback is not a code response for the transaction's redirect URI, or names another issuer. */
  | 'bad_callback'
  /** The provider refused the code: already used, expired, or PKCE mismatch. */
  | 'invalid_grant'
  /** The ID token is missing or failed validation. */
  | 'bad_token'
  /** The provider answered with an OAuth error (e.g. `access_denied` in the callback, `invalid_client`). */
  | 'provider_error'
  /** The provider could not be reached, timed out, or answered 5xx. */
  | 'provider_unavailable'
  /** The provider refused the gateway itself (`invalid_client`, ...): the saved configuration is wrong. */
  | 'provider_misconfigured';

/** A failed login step: `statusCode` 400 (`BAD_CALLBACK`), 502 (`PROVIDER_MISCONFIGURED`) or 503 (`PROVIDER_UNAVAILABLE`). */
export class FlowError extends GatewayError {
  readonly reason: FlowErrorReason;
  /** The OAuth `error` code returned by the provider, when there was one. */
  readonly oauthError: string | undefined;

  constructor(reason: FlowErrorReason, status: 400 | 502 | 503, detail: string, options?: { cause?: unknown; oauthError?: string }) {
    super(
      status === 400 ? ErrorCodes.BAD_CALLBACK : status === 502 ? ErrorCodes.PROVIDER_MISCONFIGURED : ErrorCodes.PROVIDER_UNAVAILABLE,
      status,
      status === 400
        ? 'the login could not be completed; please start again'
        : status === 502
          ? "the organisation's sign-in is misconfigured"
          : "the tenant's identity provider is unavailable",
      { detail, cause: options?.cause },
    );
    this.reason = reason;
    this.oauthError = options?.oauthError;
  }
}

/** Result of a completed callback. */
export interface LoginResult {
  /** The validated ID token's claims. */
  claims: Record<string, unknown>;
  idToken: string;
  accessToken?: string;
  refreshToken?: string;
}

/** Tokens that {@link revokeTokens} may revoke. */
export interface RevocableTokens {
  accessToken?: string;
  refreshToken?: string;
}

/** OAuth error codes that mean "try later" rather than "refused". */
const UNAVAILABLE_ERRORS = new Set(['temporarily_unavailable', 'server_error']);
/** OAuth error codes at the token endpoint that mean the saved client configuration is wrong. */
const MISCONFIGURED_ERRORS = new Set(['invalid_client', 'unauthorized_client', 'unsupported_grant_type']);
/** Claims of the ID token itself, never taken from userinfo. */
const TOKEN_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'nonce', 'azp', 'auth_time', 'at_hash', 'c_hash', 'acr', 'amr', 'sid', 'jti']);
const MAX_DETAIL = 200;

/** The text of a scalar error field; anything else counts as absent. */
function textOf(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' ? String(value) : '';
}

function clip(value: unknown): string {
  const s = typeof value === 'string' ? value : String(value);
  return s.length > MAX_DETAIL ? `${s.slice(0, MAX_DETAIL)}...` : s;
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function withoutQuery(url: URL): string {
  const u = new URL(url.href);
  u.search = '';
  u.hash = '';
  return u.href;
}

/**
 * Builds the authorization request of a new login.
 * @param opts.redirectUri `<origin>/callback_<client_id>` on the origin the user is on.
 * @param opts.scopes scopes to request; `openid` is added when missing.
 * @returns the URL to send the browser to, and the transaction to keep (sealed) until the callback.
 */
export async function startLogin(
  config: oidc.Configuration,
  opts: { redirectUri: string; scopes: string[]; loginHint?: string },
): Promise<{ url: string; transaction: LoginTransaction }> {
  const transaction: LoginTransaction = {
    codeVerifier: oidc.randomPKCECodeVerifier(),
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
  };
  const scopes = opts.scopes.includes('openid') ? opts.scopes : ['openid', ...opts.scopes];
  const params: Record<string, string> = {
    response_type: 'code',
    redirect_uri: opts.redirectUri,
    scope: [...new Set(scopes)].join(' '),
    state: transaction.state,
    nonce: transaction.nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(transaction.codeVerifier),
    code_challenge_method: 'S256',
  };
  if (opts.loginHint) params['login_hint'] = opts.loginHint;
  return { url: oidc.buildAuthorizationUrl(config, params).href, transaction };
}

/**
 * Completes a login from the provider's redirect: checks the callback, redeems the
 * code and validates the ID token.
 * @param opts.callbackUrl the full URL the callback arrived on.
 * @param opts.expectedRedirectUri the redirect URI sent in the authorization request.
 * @throws FlowError
 */
export async function finishLogin(
  client: ProviderClient,
  opts: { callbackUrl: URL; transaction: LoginTransaction; expectedRedirectUri: string },
): Promise<LoginResult> {
  const { config } = client;
  const params = opts.callbackUrl.searchParams;
  const expected = new URL(opts.expectedRedirectUri);
  if (withoutQuery(opts.callbackUrl) !== withoutQuery(expected)) {
    throw new FlowError('bad_callback', 400, 'the callback arrived on another redirect URI than the login started with');
  }
  for (const name of ['state', 'code', 'error', 'iss']) {
    if (params.getAll(name).length > 1) throw new FlowError('bad_callback', 400, `the callback repeats the ${name} parameter`);
  }
  const state = params.get('state');
  if (state === null || !sameString(state, opts.transaction.state)) {
    throw new FlowError('state_mismatch', 400, state === null ? 'the callback has no state' : "the callback's state is not the login's");
  }
  const error = params.get('error');
  if (error !== null) {
    const description = params.get('error_description');
    const detail = `the provider answered the authorization request with ${clip(error)}${description ? ` (${clip(description)})` : ''}`;
    throw UNAVAILABLE_ERRORS.has(error)
      ? new FlowError('provider_unavailable', 503, detail, { oauthError: error })
      : new FlowError('provider_error', 400, detail, { oauthError: error });
  }
  if (!params.get('code')) throw new FlowError('bad_callback', 400, 'the callback has neither code nor error');

  // The redirect URI sent to the token endpoint is derived from this URL: use the
  // one the transaction started with, carrying the callback's parameters.
  const current = new URL(expected.href);
  current.search = params.toString();
  let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
  try {
    tokens = await oidc.authorizationCodeGrant(config, current, {
      pkceCodeVerifier: opts.transaction.codeVerifier,
      expectedState: opts.transaction.state,
      expectedNonce: opts.transaction.nonce,
      idTokenExpected: true,
    });
  } catch (err) {
    throw toFlowError(err, await challengeBodyError(err));
  }
  const claims = tokens.claims();
  if (!claims || !tokens.id_token) throw new FlowError('bad_token', 400, 'the token response has no ID token');
  await verifyIdToken(client, tokens.id_token);
  const merged = await withUserinfo(client, { ...claims }, tokens.access_token);
  const result: LoginResult = { claims: merged, idToken: tokens.id_token };
  if (tokens.access_token) result.accessToken = tokens.access_token;
  if (tokens.refresh_token) result.refreshToken = tokens.refresh_token;
  return result;
}

/** Verifies an ID token's signature, algorithm, `iss` and `aud` against the provider's keys. */
async function verifyIdToken(client: ProviderClient, idToken: string): Promise<void> {
  try {
    await verifyProviderJwt(idToken, {
      keys: client.keys,
      issuer: client.issuer,
      audience: client.provider.client_id,
      algorithms: client.idTokenAlgorithms,
      ...(client.provider.client_secret ? { clientSecret: client.provider.client_secret } : {}),
      requiredClaims: ['sub', 'exp', 'iat'],
    });
  } catch (err) {
    if (err instanceof JwtCheckError && err.reason === 'jwks_unavailable') throw new FlowError('provider_unavailable', 503, err.message, { cause: err });
    throw new FlowError('bad_token', 400, `ID token refused: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The claim names the provider configuration reads. */
function wantedClaims(cfg: ProviderClient['provider']): string[] {
  const names = [cfg.claim_tenant || DEFAULT_CLAIMS.tenant, cfg.claim_name || DEFAULT_CLAIMS.name, cfg.claim_email || DEFAULT_CLAIMS.email];
  if (cfg.group_enabled) names.push(cfg.claim_groups || DEFAULT_CLAIMS.groups);
  return names;
}

/** The ID token's claims, completed from userinfo as `claims_source` says. */
async function withUserinfo(client: ProviderClient, claims: Record<string, unknown>, accessToken: string | undefined): Promise<Record<string, unknown>> {
  const source = client.provider.claims_source ?? 'both';
  if (source === 'id_token' || !client.config.serverMetadata().userinfo_endpoint) return claims;
  const lacking = wantedClaims(client.provider).some((name) => readClaim(claims, name) === undefined);
  if (source === 'both' && !lacking) return claims;
  if (!accessToken) {
    if (source === 'userinfo') throw new FlowError('bad_token', 400, 'the token response has no access token to call userinfo with');
    return claims;
  }
  let info: Record<string, unknown>;
  try {
    info = { ...(await oidc.fetchUserInfo(client.config, accessToken, claims['sub'] as string)) };
  } catch (err) {
    const fe = toFlowError(err);
    if (fe.reason === 'bad_token' || fe.reason === 'bad_callback') {
      throw new FlowError('bad_token', 400, `userinfo refused: ${fe.detail ?? fe.message}`, { cause: err });
    }
    throw fe;
  }
  const merged = { ...claims };
  for (const [name, value] of Object.entries(info)) {
    if (TOKEN_CLAIMS.has(name)) continue;
    if (source === 'userinfo' || !Object.hasOwn(merged, name)) merged[name] = value;
  }
  return merged;
}

/**
 * The OAuth `error` of a 401 whose `WWW-Authenticate` challenge names none: some
 * providers (LemonLDAP::NG) put `invalid_client` only in the JSON body.
 */
async function challengeBodyError(err: unknown): Promise<string | undefined> {
  if (!(err instanceof oidc.WWWAuthenticateChallengeError) || err.cause[0]?.parameters.error) return undefined;
  try {
    const body = (await err.response.clone().json()) as { error?: unknown };
    return typeof body.error === 'string' && /^[\x20-\x7e]{1,64}$/.test(body.error) ? body.error : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Translates an openid-client error into a {@link FlowError}.
 * @param bodyError the OAuth error read from a challenge response's body, when its header named none.
 */
function toFlowError(err: unknown, bodyError?: string): FlowError {
  if (err instanceof FlowError) return err;
  if (err instanceof oidc.ResponseBodyError) {
    const detail = `the token endpoint answered ${err.status} ${clip(err.error)}${err.error_description ? ` (${clip(err.error_description)})` : ''}`;
    if (err.status >= 500 || UNAVAILABLE_ERRORS.has(err.error)) {
      return new FlowError('provider_unavailable', 503, detail, { cause: err, oauthError: err.error });
    }
    if (err.error === 'invalid_grant') return new FlowError('invalid_grant', 400, detail, { cause: err, oauthError: err.error });
    if (MISCONFIGURED_ERRORS.has(err.error)) return new FlowError('provider_misconfigured', 502, detail, { cause: err, oauthError: err.error });
    return new FlowError('provider_error', 503, detail, { cause: err, oauthError: err.error });
  }
  if (err instanceof oidc.AuthorizationResponseError) {
    return new FlowError('provider_error', 400, `the provider answered with ${clip(err.error)}`, { cause: err, oauthError: err.error });
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    const code = err.cause[0]?.parameters.error ?? bodyError;
    const oauth = typeof code === 'string' ? { oauthError: code } : {};
    if (err.status === 401) {
      return new FlowError('provider_misconfigured', 502, `the token endpoint refused the client credentials (${err.status}${code ? ` ${clip(code)}` : ''})`, { cause: err, ...oauth });
    }
    return new FlowError('provider_error', 503, `the token endpoint answered ${err.status} with an authentication challenge`, { cause: err, ...oauth });
  }
  if (err instanceof oidc.ClientError) {
    const inner = err.cause as { message?: string; cause?: unknown } | undefined;
    const what = `${err.message}${inner?.message && inner.message !== err.message ? `: ${clip(inner.message)}` : ''}`;
    const claim = (inner?.cause as { claim?: unknown } | undefined)?.claim;
    switch (err.code) {
      case 'OAUTH_TIMEOUT':
      case 'OAUTH_ABORT':
        return new FlowError('provider_unavailable', 503, `request to the provider timed out: ${what}`, { cause: err });
      case 'OAUTH_RESPONSE_IS_NOT_CONFORM': {
        const status = (err.cause as { status?: unknown } | undefined)?.status;
        return new FlowError('provider_unavailable', 503, `the token endpoint answered HTTP ${String(status)}`, { cause: err });
      }
      case 'OAUTH_RESPONSE_IS_NOT_JSON':
      case 'OAUTH_HTTP_REQUEST_FORBIDDEN':
      case 'OAUTH_REQUEST_PROTOCOL_FORBIDDEN':
        return new FlowError('provider_unavailable', 503, what, { cause: err });
      case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
        if (claim === 'nonce') return new FlowError('nonce_mismatch', 400, "the ID token's nonce is not the login's", { cause: err });
        return new FlowError('bad_token', 400, `ID token claim ${String(claim)} failed validation`, { cause: err });
      case 'OAUTH_INVALID_RESPONSE':
        if (inner?.message && /"(state|iss)"/.test(inner.message)) return new FlowError('bad_callback', 400, what, { cause: err });
        return new FlowError('bad_token', 400, what, { cause: err });
      default:
        return new FlowError('bad_token', 400, what, { cause: err });
    }
  }
  if (err instanceof TypeError) {
    // fetch failures (connection refused, DNS) surface as TypeError.
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    const reason = cause ? `${textOf(cause.code)} ${textOf(cause.message)}`.trim() : err.message;
    return new FlowError('provider_unavailable', 503, `request to the provider failed: ${clip(reason)}`, { cause: err });
  }
  return new FlowError('provider_unavailable', 503, `unexpected error: ${clip(err instanceof Error ? err.message : err)}`, {
    cause: err,
  });
}

/**
 * The provider's logout URL, or `undefined` when it announces no end_session_endpoint.
 * @param opts.postLogoutRedirectUri `<origin>/login/<tenant>` or `<origin>/login`.
 */
export function buildEndSessionUrl(
  config: oidc.Configuration,
  opts: { idTokenHint?: string; postLogoutRedirectUri: string; clientId: string },
): string | undefined {
  if (!config.serverMetadata().end_session_endpoint) return undefined;
  const params: Record<string, string> = {
    client_id: opts.clientId,
    post_logout_redirect_uri: opts.postLogoutRedirectUri,
  };
  if (opts.idTokenHint) params['id_token_hint'] = opts.idTokenHint;
  return oidc.buildEndSessionUrl(config, params).href;
}

/**
 * Revokes the refresh and access tokens at the provider, best effort: returns after
 * `timeoutMs` at the latest, never throws, does nothing without a revocation endpoint.
 * @returns how many tokens the provider confirmed revoked (0 when `timeoutMs` passed first).
 */
export async function revokeTokens(config: oidc.Configuration, tokens: RevocableTokens, timeoutMs: number): Promise<number> {
  if (!config.serverMetadata().revocation_endpoint) return 0;
  const jobs: Array<[string, string]> = [];
  if (tokens.refreshToken) jobs.push([tokens.refreshToken, 'refresh_token']);
  if (tokens.accessToken) jobs.push([tokens.accessToken, 'access_token']);
  if (!jobs.length) return 0;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<number>((resolve) => {
    timer = setTimeout(() => resolve(0), timeoutMs);
    timer.unref();
  });
  const work = Promise.all(
    jobs.map(([token, hint]) =>
      oidc.tokenRevocation(config, token, { token_type_hint: hint }).then(
        () => 1,
        () => 0,
      ),
    ),
  ).then((done) => done.reduce((a: number, b: number) => a + b, 0));
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
