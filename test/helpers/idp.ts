/**
 * A real OpenID Connect provider (oidc-provider 9) on 127.0.0.1 for tests, standing
 * in for a tenant's Keycloak realm, and a scripted browser for its login pages.
 *
 * - Every claim given for a user is delivered in the ID token under the standard
 *   `openid profile email` scopes (custom claims such as `tenant_key` and
 *   `ad_groups_trusted` go with `profile`, and with a `tenant` scope of their own).
 * - PKCE (S256) is required; an RS256 key is made at start (or `signingKeys` given);
 *   `rotate(keys)` swaps the signing keys mid-run (same issuer, same storage);
 *   revocation and RP-initiated logout are on; consent is granted automatically.
 * - `claimsAtUserinfo`: claims reach only userinfo, the ID token carries `sub` alone.
 * - `intercept(req, res)` sees every request first and may answer it itself.
 * - The development login form accepts any password; the login name is the account id.
 * - With `backchannelLogout`, signing out at the provider (`logoutAtIdp`) posts a
 *   logout token to each client's `backchannel_logout_uri`, delivered to the gateway
 *   on 127.0.0.1 (the URI's host goes in the Host header).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
// @ts-expect-error oidc-provider ships no type declarations
import OidcProviderImpl from 'oidc-provider';

/** A client registered at the test provider. */
export interface IdpClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  /** Default `client_secret_basic`. */
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
  /** Public keys of a private_key_jwt client. */
  jwks?: { keys: object[] };
  id_token_signed_response_alg?: string;
  backchannel_logout_uri?: string;
  backchannel_logout_session_required?: boolean;
}

/** Options of {@link startIdp}. */
export interface StartIdpOptions {
  clients: IdpClient[];
  /** Claims by account id, e.g. `{ alice: { email, name, tenant_key, ad_groups_trusted } }`; `sub` defaults to the id. */
  users: Record<string, Record<string, unknown>>;
  /** Seconds an ID token is valid (default 600). */
  idTokenTtlSeconds?: number;
  /** Private signing JWKs (default: one fresh RS256 key). */
  signingKeys?: object[];
  /** Claims only at userinfo: the ID token carries `sub` alone (oidc-provider's conform mode). */
  claimsAtUserinfo?: boolean;
  /** Sees every request first; returns true when it answered. */
  intercept?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /**
   * Enables back-channel logout; the port (on 127.0.0.1) that logout tokens are
   * delivered to, whatever host the client's `backchannel_logout_uri` names.
   */
  backchannelLogout?: { deliverToPort: () => number };
}

/** The parts of oidc-provider's Provider that tests use. */
interface IdpProvider {
  issuer: string;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  on(event: string, listener: (...args: unknown[]) => void): void;
  Grant: new (init: { clientId: string; accountId: string }) => IdpGrant;
  [key: string]: unknown;
}

interface IdpGrant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  save(): Promise<string>;
}

/** A running test provider. */
export interface Idp {
  /** `http://127.0.0.1:<port>`. */
  issuer: string;
  /** Absolute URL of a path on the provider. */
  url(path: string): string;
  /** Number of requests served, by path (query excluded). */
  hits: Map<string, number>;
  /** Headers of the last request, by path (query excluded). */
  lastHeaders: Map<string, IncomingMessage['headers']>;
  close(): Promise<void>;
  provider: IdpProvider;
  /** Replaces the signing keys (the first one signs); logins in flight start again. */
  rotate(keys: object[]): void;
  /** The private signing key in use as a JWK (to sign test tokens the provider would accept). */
  readonly signingJwk: Record<string, unknown>;
  /** Back-channel logout deliveries: the status the relying party answered. */
  backchannelDeliveries: Array<{ url: string; status: number }>;
}

/** A fresh private RS256 signing JWK with a random kid. */
export function newSigningKey(): object {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };
}

/** A fetch for the provider's outgoing calls: to 127.0.0.1:port, the URL's host in the Host header. */
function loopbackFetch(port: () => number, seen: Array<{ url: string; status: number }>) {
  return (url: string | URL, init: { method?: string; headers?: Headers; body?: unknown } = {}) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(String(url));
      const headers: Record<string, string> = { host: target.host };
      init.headers?.forEach((v, k) => (headers[k] = v));
      const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : init.body instanceof URLSearchParams ? init.body.toString() : JSON.stringify(init.body);
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      const req = httpRequest({ host: '127.0.0.1', port: port(), method: init.method ?? 'GET', path: target.pathname + target.search, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          seen.push({ url: target.href, status: res.statusCode ?? 0 });
          resolve(new Response(res.statusCode === 204 ? null : Buffer.concat(chunks), { status: res.statusCode ?? 500 }));
        });
      });
      req.on('error', reject);
      req.end(body);
    });
}

const STANDARD_PROFILE = ['name', 'given_name', 'family_name', 'preferred_username', 'locale', 'updated_at'];
const EMAIL = ['email', 'email_verified'];

/** Starts an identity provider on 127.0.0.1, port chosen by the system. */
export async function startIdp(opts: StartIdpOptions): Promise<Idp> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const hits = new Map<string, number>();
  const lastHeaders = new Map<string, IncomingMessage['headers']>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    lastHeaders.set(path, req.headers);
    if (opts.intercept?.(req, res)) return;
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const custom = new Set<string>();
  for (const claims of Object.values(opts.users)) {
    for (const name of Object.keys(claims)) {
      if (name !== 'sub' && !STANDARD_PROFILE.includes(name) && !EMAIL.includes(name)) custom.add(name);
    }
  }
  const ttl = opts.idTokenTtlSeconds ?? 600;
  const cookieKey = randomBytes(32).toString('base64url');
  const deliveries: Array<{ url: string; status: number }> = [];

  const build = (keys: object[]): IdpProvider => new OidcProviderImpl(issuer, {
    clients: opts.clients.map((c) => ({
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...c,
    })),
    jwks: { keys },
    cookies: { keys: [cookieKey] },
    claims: {
      openid: ['sub'],
      email: EMAIL,
      profile: [...STANDARD_PROFILE, ...custom],
      tenant: [...custom],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'tenant'],
    conformIdTokenClaims: opts.claimsAtUserinfo === true,
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA', 'HS256'] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true, allowedPolicy: async () => true },
      rpInitiatedLogout: { enabled: true },
      ...(opts.backchannelLogout ? { backchannelLogout: { enabled: true } } : {}),
    },
    ...(opts.backchannelLogout ? { fetch: loopbackFetch(opts.backchannelLogout.deliverToPort, deliveries) } : {}),
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      IdToken: ttl,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
    },
    async findAccount(_ctx: unknown, id: string) {
      const claims = opts.users[id];
      if (!claims) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
    },
    // Consent is not what these tests are about: grant whatever the client asks.
    async loadExistingGrant(ctx: {
      oidc: {
        client: { clientId: string };
        session: { accountId: string; grantIdFor(clientId: string): string | undefined };
        result?: { consent?: { grantId?: string } };
        provider: { Grant: { find(id: string): Promise<unknown> } };
        params: { scope?: string };
        requestParamClaims?: Set<string>;
      };
    }) {
      const existing = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (existing) {
        const found = await ctx.oidc.provider.Grant.find(existing);
        if (found) return found;
      }
      const grant = new current.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(ctx.oidc.params.scope ?? 'openid');
      grant.addOIDCClaims([...(ctx.oidc.requestParamClaims ?? [])]);
      await grant.save();
      return grant;
    },
    async renderError(ctx: { type: string; body: string }, out: { error: string }) {
      ctx.type = 'text/plain';
      ctx.body = `error: ${out.error}`;
    },
  });
  let currentKeys: object[] = opts.signingKeys ?? [newSigningKey()];
  let current: IdpProvider = build(currentKeys);
  handler = current.callback();

  return {
    issuer,
    url: (path: string) => new URL(path, issuer).href,
    hits,
    lastHeaders,
    get provider() {
      return current;
    },
    get signingJwk() {
      return currentKeys[0] as Record<string, unknown>;
    },
    rotate(keys: object[]) {
      currentKeys = keys;
      current = build(keys);
      handler = current.callback();
    },
    backchannelDeliveries: deliveries,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Cookies by name with their path, enough for oidc-provider's interaction cookies. */
export class CookieJar {
  #cookies = new Map<string, { value: string; path: string }>();

  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      if (eq < 1) continue;
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      let path = '/';
      let expired = false;
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k!.trim().toLowerCase();
        if (key === 'path') path = v.trim() || '/';
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${name};${path}`;
      if (expired || value === '') this.#cookies.delete(id);
      else this.#cookies.set(id, { value, path });
    }
  }

  header(url: URL): string {
    const out: string[] = [];
    for (const [id, c] of this.#cookies) {
      const p = c.path;
      if (url.pathname === p || url.pathname.startsWith(p.endsWith('/') ? p : `${p}/`)) {
        out.push(`${id.split(';')[0]}=${c.value}`);
      }
    }
    return out.join('; ');
  }
}

/**
 * Logs `account` in at the test provider the way a browser would, starting from an
 * authorization URL, and stops at the redirect back to the relying party.
 * @returns the redirect to the client's redirect_uri (with `code`, `state`, `iss`,
 *   or `error`); it is never requested.
 */
export async function loginAtIdp(authorizationUrl: string, account: string, jar = new CookieJar()): Promise<{ callbackUrl: string }> {
  const start = new URL(authorizationUrl);
  let url = start;
  let method: 'GET' | 'POST' = 'GET';
  let body: URLSearchParams | undefined;
  for (let step = 0; step < 12; step++) {
    const cookie = jar.header(url);
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body,
    });
    jar.store(res);
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const next = new URL(res.headers.get('location') ?? '', url);
      if (next.origin !== start.origin) return { callbackUrl: next.href };
      url = next;
      method = 'GET';
      body = undefined;
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`identity provider answered ${res.status} at ${url.pathname}: ${html.slice(0, 200)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
    if (!action || !prompt) throw new Error(`no login form at ${url.pathname}`);
    url = new URL(action.replace(/&amp;/g, '&'), url);
    method = 'POST';
    body = new URLSearchParams(prompt === 'login' ? { prompt, login: account, password: 'any' } : { prompt });
  }
  throw new Error('too many steps at the identity provider');
}

/**
 * Signs out at the provider the way a browser would (`/session/end`, then "Yes, sign
 * me out"), with the cookies of an earlier {@link loginAtIdp}. The provider sends its
 * back-channel logout tokens before it answers.
 */
export async function logoutAtIdp(idp: Idp, jar: CookieJar): Promise<void> {
  const start = new URL(idp.url('/session/end'));
  const page = await fetch(start, { headers: { cookie: jar.header(start) }, redirect: 'manual' });
  jar.store(page);
  const html = await page.text();
  const action = /<form[^>]*id="op.logoutForm"[^>]*action="([^"]+)"|<form[^>]*action="([^"]+)"[^>]*id="op.logoutForm"/.exec(html);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
  if (!action || !xsrf) throw new Error(`no logout form at the provider: ${html.slice(0, 200)}`);
  const confirm = new URL((action[1] ?? action[2])!.replace(/&amp;/g, '&'), start);
  const res = await fetch(confirm, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: jar.header(confirm), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ xsrf, logout: 'yes' }),
  });
  await res.arrayBuffer();
  if (res.status >= 400) throw new Error(`the provider answered ${res.status} to the sign-out`);
}
