/**
 * `/callback_<client_id>` (and anything that decodes or normalises to it).
 *
 * Rules:
 * - rate limited per client address;
 * - the raw path must be well formed, the client_id a known provider's (of a tenant,
 *   unless settings providers are allowed), and that tenant the host's tenant on a
 *   tenant host (src/tenancy/isolation.ts);
 * - a GET needs a well-formed query (`code`+`state` or `error`+`state`); a POST is a
 *   form_post whose body is checked once read, with no query; other methods are refused;
 * - a refusal is a 400 page, a log line and a metric by reason; the upstream never sees it;
 * - a valid callback is completed (authenticate mode) or passed on (route mode).
 */
import type { ClientRecord } from '../../directory/types.js';
import type { CallbackRefusalReason } from '../../reasons.js';
import { parseCallbackPath, validateCallbackQuery } from '../../tenancy/callback.js';
import { callbackBelongsToHost } from '../../tenancy/isolation.js';
import type { SiteContext } from '../context.js';
import type { Decision } from '../decision.js';
import type { PipelineEnv } from '../env.js';
import { rateLimitedPage } from './pages.js';
import { upstreamView } from './pass.js';
import type { SiteStep, StepFactory } from './step.js';

const FORM = 'application/x-www-form-urlencoded';

/** The 400 page of a refused callback, counted by reason. */
export function refuseCallback(env: PipelineEnv, ctx: SiteContext, reason: CallbackRefusalReason, tenant?: string): Decision {
  env.metrics.callbackRefused(reason, tenant);
  const hostTenant = ctx.site.tenant?.company.sso.tenant;
  const home = hostTenant ? `/login/${encodeURIComponent(hostTenant)}` : '/login';
  return {
    kind: 'page',
    status: 400,
    reason,
    ...(tenant !== undefined ? { tenant } : {}),
    page: {
      title: 'Sign-in could not be completed',
      paragraphs: ['The sign-in response was not valid. Please start again.'],
      link: { href: home, text: 'Back to sign-in' },
    },
  };
}

/** Decides callbacks; other requests go on. */
export const callback: StepFactory<SiteStep> = (env) => {
  const decideFor = (ctx: SiteContext, client: ClientRecord | undefined): Decision => {
    if (!client || (client.tenant === undefined && !env.allowSettingsProviders)) return refuseCallback(env, ctx, 'unknown_client');
    const hostTenant = ctx.site.tenant?.company.sso.tenant;
    if (!callbackBelongsToHost(client.tenant, hostTenant)) return refuseCallback(env, ctx, 'wrong_tenant', hostTenant);
    if (ctx.method === 'GET') {
      const v = validateCallbackQuery(ctx.query ?? '');
      if (!v.ok) return refuseCallback(env, ctx, v.reason, client.tenant);
      return env.sessions ? { kind: 'callback', client, params: v.params } : { kind: 'pass', view: upstreamView(ctx, env) };
    }
    if (ctx.method === 'POST') {
      const type = String(ctx.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== FORM || (ctx.query !== undefined && ctx.query !== '')) return refuseCallback(env, ctx, 'bad_form_post', client.tenant);
      return { kind: 'form-callback', client, view: upstreamView(ctx, env) };
    }
    return refuseCallback(env, ctx, 'bad_method', client.tenant);
  };

  const check = async (ctx: SiteContext): Promise<Decision> => {
    const limit = env.limits.callback;
    if (limit) {
      const r = await limit(ctx.clientAddress);
      if (!r.allowed) return rateLimitedPage(r.retryAfterSeconds);
    }
    const parsed = parseCallbackPath(ctx.path);
    if ('error' in parsed) return refuseCallback(env, ctx, parsed.error);
    return decideFor(ctx, await env.directory.client(parsed.clientId));
  };

  return (ctx) => (ctx.canonical.startsWith('/callback_') ? check(ctx) : undefined);
};
