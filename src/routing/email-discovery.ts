/**
 * Email discovery on the base host: `GET /login` shows a form, `POST /login` with
 * `email=` answers `303 /login/<tenant>?login_hint=<email>` for a known domain.
 *
 * Rules: an unknown or malformed email gets the same form again (200) with one
 * neutral message, after the same work (one directory lookup), naming no tenant;
 * submissions are rate limited per client address (the rate-limit plugin is registered
 * on the listener, so its store may be shared); a safe `redirect` is carried on.
 * On a tenant host the pipeline sends `/login` to that tenant's login before these
 * routes are reached.
 */
import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { NOT_CACHED, type CachedDirectory } from '../directory/cached-directory.js';
import type { Metrics } from '../observability/metrics.js';
import { escapeHtml, sendPage } from '../pages/render.js';
import { emailDomain } from '../tenancy/email.js';
import { normalizeDomain } from '../tenancy/host.js';
import { remembered } from '../tenancy/remembered.js';
import { safeRelativeRedirect } from '../tenancy/redirect.js';
import { loginLocation } from './login-location.js';

/** Options of the email discovery routes. */
export interface EmailDiscoveryOptions {
  directory: CachedDirectory;
  metrics: Metrics;
  perMinute: number;
  bodyLimit: number;
  /** Shown as the page heading. */
  productName?: string;
}

const NEUTRAL = 'We could not find single sign-on for that address. Check the spelling, or ask your administrator for your organisation’s sign-in link.';
/** Email domains remembered with their normal form. */
const DOMAIN_CACHE_MAX = 4096;
/** Looked up for malformed emails so that every submission does the same work. */
const NO_DOMAIN = 'invalid.invalid';

function form(opts: { email?: string; message?: string; redirect?: string }): string {
  const redirect = opts.redirect ? `<input type="hidden" name="redirect" value="${escapeHtml(opts.redirect)}">` : '';
  const message = opts.message ? `<p class="note" role="alert" id="login-message">${escapeHtml(opts.message)}</p>` : '';
  const described = opts.message ? ' aria-describedby="login-message"' : '';
  return `${message}<form method="post" action="/login">
<label for="email">Work email</label>
<input type="email" id="email" name="email" autocomplete="email" required autofocus maxlength="254" value="${escapeHtml(opts.email ?? '')}"${described}>
${redirect}<button type="submit">Continue</button>
</form>`;
}

/** Registers `GET /login` and `POST /login` (encapsulated: its body parser stays here). */
export default async function emailDiscovery(app: FastifyInstance, opts: EmailDiscoveryOptions): Promise<void> {
  await app.register(formbody, { bodyLimit: opts.bodyLimit });
  const title = opts.productName ?? 'Sign in';
  const normalDomain = remembered(normalizeDomain, DOMAIN_CACHE_MAX);

  const page = (reply: FastifyReply, status: number, f: Parameters<typeof form>[0]) =>
    sendPage(reply, status, { title, heading: 'Sign in with your organisation', html: form(f) });

  app.get('/login', async (req, reply) => {
    const redirect = safeRelativeRedirect((req.query as Record<string, unknown>).redirect as string | undefined);
    return page(reply, 200, redirect ? { redirect } : {});
  });

  app.post(
    '/login',
    {
      config: { rateLimit: { max: opts.perMinute, timeWindow: 60_000 } },
      bodyLimit: opts.bodyLimit,
    },
    async (req, reply) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const email = typeof body.email === 'string' ? body.email : '';
      const redirect = typeof body.redirect === 'string' ? safeRelativeRedirect(body.redirect) : undefined;
      const domain = emailDomain(email, normalDomain);
      const key = domain ?? NO_DOMAIN;
      const cached = opts.directory.peek('domain', key);
      const tenant = cached !== NOT_CACHED ? cached : await opts.directory.tenantByDomain(key);
      if (domain !== undefined && tenant !== undefined) {
        opts.metrics.discovery('found');
        return reply.redirect(loginLocation(tenant, { login_hint: email.trim(), redirect }), 303);
      }
      opts.metrics.discovery(domain === undefined ? 'invalid' : 'unknown');
      return page(reply, 200, { email: email.slice(0, 254), message: NEUTRAL, ...(redirect ? { redirect } : {}) });
    },
  );
}
