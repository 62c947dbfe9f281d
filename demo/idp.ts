/**
 * A tenant's identity provider for the demo: a real OpenID Connect provider
 * (oidc-provider 9) on loopback, shaped like a Keycloak realm so that the ClearML
 * payloads work unchanged.
 *
 * - The issuer is `http://<host>:<port>/realms/<realm>` and the endpoints have
 *   Keycloak's paths (`/protocol/openid-connect/auth`, `/token`, `/logout`, ...), so
 *   the gateway derives the issuer from `authorization_endpoint` as it does for Keycloak.
 * - Its login page is a real form for people: labelled fields, the demo accounts
 *   listed, any password accepted. It asks on every sign-in (no single sign-on at the
 *   provider), so that switching users needs no cookie clearing.
 * - Every page it renders is self-contained (no script, no external font), with a
 *   hash-based CSP; nothing ever leaves loopback.
 * - Each user's claims (`tenant_key`, `ad_groups_trusted`, `name`, `email`) are in the
 *   ID token under the standard `openid profile email` scopes; consent is implied.
 * - State is per instance (its own storage and cookie names), so several providers
 *   can share a process and a browser.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A user of a demo identity provider. */
export interface DemoUser {
  /** Login name, also the subject (`sub`). */
  login: string;
  email: string;
  name: string;
  /** Value of the `tenant_key` claim; omitted: the claim is absent. */
  tenant?: string;
  /** Value of the `ad_groups_trusted` claim. */
  groups: string[];
  /** What signing in as this user shows. */
  demonstrates: string;
}

/** A relying party registered at a demo identity provider. */
interface DemoClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  /** Where logout tokens are posted when the user signs out here (OpenID Connect Back-Channel Logout). */
  backchannel_logout_uri?: string;
  backchannel_logout_session_required?: boolean;
}

/** Options of {@link startDemoIdp}. */
export interface DemoIdpOptions {
  /** Realm name: the last segment of the issuer, e.g. `acme`. */
  realm: string;
  /** Shown on the provider's pages, e.g. `Acme Corp`. */
  displayName: string;
  /** Banner colour of the provider's pages (white text must read on it). */
  accent?: string;
  clients: DemoClient[];
  users: DemoUser[];
  /** Listening address (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: chosen by the system). */
  port?: number;
}

/** A running demo identity provider. */
export interface DemoIdp {
  /** `http://127.0.0.1:<port>/realms/<realm>`. */
  issuer: string;
  /** Endpoints as a Keycloak realm's OpenID configuration names them. */
  endpoints: {
    authorization_endpoint: string;
    token_endpoint: string;
    revocation_endpoint: string;
    end_session_endpoint: string;
  };
  close(): Promise<void>;
}

type OidcProvider = {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<{ uid: string; prompt: { name: string }; params: Record<string, unknown> }>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: unknown, opts?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  Grant: new (init: { clientId: string; accountId: string }) => { addOIDCScope(s: string): void; addOIDCClaims(c: string[]): void; save(): Promise<string> };
  on(event: string, listener: (...args: unknown[]) => void): void;
};

type OidcModule = {
  default: new (issuer: string, config: Record<string, unknown>) => OidcProvider;
  interactionPolicy: {
    base(): Array<{ name: string; checks: { add(check: unknown): void } }> & { get(name: string): { checks: { add(check: unknown): void } } };
    Check: (new (reason: string, description: string, check: (ctx: { oidc: { result?: { login?: unknown } } }) => boolean) => unknown) & {
      REQUEST_PROMPT: boolean;
      NO_NEED_TO_PROMPT: boolean;
    };
  };
};

let loaded: Promise<OidcModule> | undefined;

/**
 * Loads oidc-provider once. Its import-time notice about the Node.js version is
 * dropped: it works on Node 20, and the demo's output is for the user.
 */
function loadOidcProvider(): Promise<OidcModule> {
  loaded ??= (async () => {
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return;
      warn(...args);
    };
    try {
      // @ts-ignore oidc-provider ships no type declarations
      return (await import('oidc-provider')) as unknown as OidcModule;
    } finally {
      console.warn = warn;
    }
  })();
  return loaded;
}

/** Storage for one provider: oidc-provider's adapter interface over a Map, with expiry. */
function mapAdapter() {
  const entries = new Map<string, { value: unknown; expiresAt: number }>();
  const grants = new Map<string, Set<string>>();
  const read = (key: string): any => {
    const e = entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return e.value;
  };
  const write = (key: string, value: unknown, expiresIn?: number) =>
    entries.set(key, { value, expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity });
  return (model: string) => {
    const key = (id: string) => `${model}:${id}`;
    return {
      async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
        write(key(id), payload, expiresIn);
        if (model === 'Session' && typeof payload.uid === 'string') write(`sessionUid:${payload.uid}`, id, expiresIn);
        if (typeof payload.grantId === 'string') {
          const members = grants.get(payload.grantId) ?? new Set<string>();
          members.add(key(id));
          grants.set(payload.grantId, members);
        }
      },
      async find(id: string) {
        return read(key(id));
      },
      async findByUid(uid: string) {
        const id = read(`sessionUid:${uid}`) as string | undefined;
        return id === undefined ? undefined : read(key(id));
      },
      async findByUserCode() {
        return undefined;
      },
      async consume(id: string) {
        const payload = read(key(id)) as Record<string, unknown> | undefined;
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id: string) {
        entries.delete(key(id));
      },
      async revokeByGrantId(grantId: string) {
        for (const k of grants.get(grantId) ?? []) entries.delete(k);
        grants.delete(grantId);
      },
    };
  };
}

function esc(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The look of one provider's pages, and the CSP that allows exactly that style. */
function pageKit(displayName: string, accent: string) {
  const style = `*{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;line-height:1.5;background:#eef0f3;color:#111827}
body{margin:0}
header{background:${accent};color:#fff;padding:.9rem 1.5rem;font-weight:700}
header p{margin:0}header span{font-weight:400}
main{max-width:34rem;margin:2rem auto;background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 3px rgba(0,0,0,.2)}
h1{font-size:1.4rem;margin:0 0 1rem}h2{font-size:1.1rem;margin:2rem 0 .5rem}
p{margin:0 0 1rem}form{margin:0 0 1.25rem}label{display:block;font-weight:600;margin:1rem 0 .3rem}
input{display:block;width:100%;min-height:2.75rem;padding:.5rem .75rem;font:inherit;border:1px solid #6b7280;border-radius:.25rem}
.hint{color:#374151;font-size:.9rem;margin:.3rem 0 0}
button{min-height:2.75rem;margin:1.25rem .5rem 0 0;padding:.5rem 1.25rem;font:inherit;font-weight:600;color:#fff;background:${accent};border:2px solid transparent;border-radius:.25rem;cursor:pointer}
button.secondary{color:${accent};background:#fff;border-color:${accent}}
a{color:#1d4ed8}
a:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid #b45309;outline-offset:2px}
[role=alert]{background:#fef2f2;border-left:.25rem solid #b91c1c;padding:.75rem 1rem}
table{width:100%;border-collapse:collapse;font-size:.9rem}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d1d5db;vertical-align:top}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}`;
  const csp = [
    "default-src 'none'",
    `style-src 'sha256-${createHash('sha256').update(style, 'utf8').digest('base64')}'`,
    'img-src data:',
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
  const headers = {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': csp,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
  const render = (title: string, body: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · ${esc(displayName)} identity provider</title>
<link rel="icon" href="data:,">
<style>${style}</style>
</head>
<body>
<header><p>${esc(displayName)} <span>identity provider (demo)</span></p></header>
<main>
${body}
</main>
</body>
</html>
`;
  return { headers, render };
}

/** Starts a demo identity provider; resolves once it listens. */
export async function startDemoIdp(opts: DemoIdpOptions): Promise<DemoIdp> {
  const { default: Provider, interactionPolicy } = await loadOidcProvider();
  const host = opts.host ?? '127.0.0.1';
  const prefix = `/realms/${encodeURIComponent(opts.realm)}`;
  const kit = pageKit(opts.displayName, opts.accent ?? '#0f766e');
  const byLogin = new Map<string, DemoUser>();
  for (const u of opts.users) {
    byLogin.set(u.login.toLowerCase(), u);
    byLogin.set(u.email.toLowerCase(), u);
  }

  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    if (handle) handle(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const issuer = `${origin}${prefix}`;
  const oidcPath = '/protocol/openid-connect';

  const policy = interactionPolicy.base();
  const { Check } = interactionPolicy;
  policy.get('login').checks.add(
    new Check('demo_every_time', 'the demo provider asks who is signing in every time', (ctx) =>
      ctx.oidc.result?.login ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT,
    ),
  );

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };
  const cookiePrefix = `${opts.realm.replace(/[^A-Za-z0-9]/g, '_')}_`;

  const sendHtml = (res: ServerResponse, status: number, title: string, body: string) => {
    res.writeHead(status, kit.headers).end(kit.render(title, body));
  };

  const provider = new Provider(issuer, {
    adapter: mapAdapter(),
    clients: opts.clients.map((c) => ({
      ...c,
      client_name: opts.displayName,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    })),
    jwks: { keys: [jwk] },
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      names: { session: `${cookiePrefix}session`, interaction: `${cookiePrefix}interaction`, resume: `${cookiePrefix}interaction_resume` },
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'tenant_key', 'ad_groups_trusted'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    routes: {
      authorization: `${oidcPath}/auth`,
      token: `${oidcPath}/token`,
      userinfo: `${oidcPath}/userinfo`,
      jwks: `${oidcPath}/certs`,
      revocation: `${oidcPath}/revoke`,
      end_session: `${oidcPath}/logout`,
    },
    // The demo's relying party is on loopback, which oidc-provider's own request
    // guard refuses: its back-channel logout calls go out without that guard.
    fetch: (url: string | URL, options: RequestInit & { dispatcher?: unknown }) => {
      const { dispatcher: _guard, ...rest } = options;
      return fetch(url, rest);
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx: { body: string; set(h: Record<string, string>): void }, form: string) {
          ctx.set(kit.headers);
          ctx.body = kit.render(
            'Sign out',
            `<h1>Sign out of ${esc(opts.displayName)}?</h1>
<p>The application asked to end your session at this identity provider too.</p>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button class="secondary" type="submit" form="op.logoutForm">No, stay signed in</button>`,
          );
        },
        async postLogoutSuccessSource(ctx: { body: string; set(h: Record<string, string>): void }) {
          ctx.set(kit.headers);
          ctx.body = kit.render('Signed out', '<h1>You are signed out</h1><p>You can close this window.</p>');
        },
      },
    },
    interactions: {
      policy,
      url: (_ctx: unknown, interaction: { uid: string }) => `${prefix}/login-actions/${interaction.uid}`,
    },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600, RefreshToken: 3600 },
    async findAccount(_ctx: unknown, id: string) {
      const u = byLogin.get(id.toLowerCase());
      if (!u || u.login !== id) return undefined;
      return {
        accountId: u.login,
        claims: async () => ({
          sub: u.login,
          preferred_username: u.login,
          email: u.email,
          email_verified: true,
          name: u.name,
          ...(u.tenant !== undefined ? { tenant_key: u.tenant } : {}),
          ad_groups_trusted: u.groups,
        }),
      };
    },
    // Consent is implied: the demo is about the gateway, not about the provider's consent screen.
    async loadExistingGrant(ctx: {
      oidc: {
        client: { clientId: string };
        session: { accountId: string; grantIdFor(clientId: string): string | undefined };
        result?: { consent?: { grantId?: string } };
        provider: { Grant: { find(id: string): Promise<unknown> } };
        params: { scope?: string };
      };
    }) {
      const existing = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (existing) {
        const found = await ctx.oidc.provider.Grant.find(existing);
        if (found) return found;
      }
      const grant = new provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(ctx.oidc.params.scope ?? 'openid');
      await grant.save();
      return grant;
    },
    async renderError(ctx: { body: string; set(h: Record<string, string>): void }, out: { error: string; error_description?: string }) {
      ctx.set(kit.headers);
      ctx.body = kit.render(
        'Error',
        `<h1>The identity provider refused the request</h1><p><code>${esc(out.error)}</code>${out.error_description ? `: ${esc(out.error_description)}` : ''}</p>`,
      );
    },
  });
  const providerHandler = provider.callback();

  function loginForm(uid: string, params: Record<string, unknown>, opts2: { login?: string; error?: string } = {}): string {
    const client = typeof params.client_id === 'string' ? params.client_id : '';
    const hint = opts2.login ?? (typeof params.login_hint === 'string' ? params.login_hint : '');
    const error = opts2.error ? `<p role="alert" id="login-error">${esc(opts2.error)}</p>` : '';
    const rows = opts.users
      .map((u) => `<tr><td><code>${esc(u.login)}</code></td><td>${esc(u.email)}</td><td>${esc(u.demonstrates)}</td></tr>`)
      .join('\n');
    return `<h1>Sign in</h1>
<p>The application <code>${esc(client)}</code> asks who you are.</p>
${error}<form method="post" action="${esc(`${prefix}/login-actions/${uid}`)}" autocomplete="off">
<input type="hidden" name="prompt" value="login">
<label for="login">Username or email</label>
<input id="login" name="login" required value="${esc(hint)}"${hint ? '' : ' autofocus'}${opts2.error ? ' aria-describedby="login-error"' : ''}>
<label for="password">Password</label>
<input id="password" name="password" type="password" required aria-describedby="password-hint"${hint ? ' autofocus' : ''}>
<p class="hint" id="password-hint">Any password works in this demo.</p>
<button type="submit">Sign in</button>
</form>
<p><a href="${esc(`${prefix}/login-actions/${uid}/abort`)}">Cancel and go back to the application</a></p>
<h2 id="accounts">Demo accounts</h2>
<table aria-labelledby="accounts">
<thead><tr><th scope="col">Username</th><th scope="col">Email</th><th scope="col">Shows</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`;
  }

  async function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > 16_384) return undefined;
      chunks.push(chunk);
    }
    return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  }

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, action: string | undefined): Promise<void> {
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      return sendHtml(res, 400, 'Sign-in expired', '<h1>This sign-in has expired</h1><p>Go back to the application and start again.</p>');
    }
    if (details.uid !== uid || details.prompt.name !== 'login') {
      return sendHtml(res, 400, 'Sign-in expired', '<h1>This sign-in is not in progress</h1><p>Go back to the application and start again.</p>');
    }
    if (action === 'abort' && req.method === 'GET') {
      return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
    }
    if (action !== undefined) return sendHtml(res, 404, 'Not found', '<h1>Not found</h1>');
    if (req.method === 'GET') return sendHtml(res, 200, 'Sign in', loginForm(uid, details.params));
    if (req.method !== 'POST') return sendHtml(res, 405, 'Not allowed', '<h1>Method not allowed</h1>');
    const form = await readForm(req);
    const login = (form?.get('login') ?? '').trim();
    const user = byLogin.get(login.toLowerCase());
    if (!user || !form?.get('password')) {
      const error = user ? 'Enter a password (any password works).' : `There is no demo account called “${login}”. Pick one from the list below.`;
      return sendHtml(res, 200, 'Sign in', loginForm(uid, details.params, { login, error }));
    }
    return provider.interactionFinished(req, res, { login: { accountId: user.login } }, { mergeWithLastSubmission: false });
  }

  const interactionPath = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/login-actions/([A-Za-z0-9_-]+)(?:/(\\w+))?$`);
  handle = (req, res) => {
    const url = req.url ?? '/';
    const path = url.split('?')[0]!;
    const m = interactionPath.exec(path);
    if (m) {
      interaction(req, res, m[1]!, m[2]).catch(() => {
        if (!res.headersSent) sendHtml(res, 500, 'Error', '<h1>Something went wrong</h1>');
        else res.end();
      });
      return;
    }
    if (path !== prefix && !path.startsWith(`${prefix}/`)) {
      return sendHtml(res, 404, 'Not found', `<h1>Not found</h1><p>This provider serves <code>${esc(prefix)}</code>.</p>`);
    }
    // Mounted under the realm path, the way a framework mounts it: oidc-provider
    // reads the prefix back from `originalUrl`.
    (req as IncomingMessage & { originalUrl?: string }).originalUrl = url;
    req.url = url.slice(prefix.length) || '/';
    providerHandler(req, res);
  };

  const endpoint = (p: string) => `${issuer}${oidcPath}/${p}`;
  return {
    issuer,
    endpoints: {
      authorization_endpoint: endpoint('auth'),
      token_endpoint: endpoint('token'),
      revocation_endpoint: endpoint('revoke'),
      end_session_endpoint: endpoint('logout'),
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
