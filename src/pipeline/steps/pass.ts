/**
 * The last step: the request goes upstream.
 *
 * Rules: a `redirect` query parameter that is not a safe relative path is removed
 * before the request goes upstream; the upstream is told the normalised host and the
 * public scheme; in authenticate mode the gateway's cookies are never passed on.
 */
import { dropUnsafeRedirect } from '../../routing/request-shape.js';
import type { SiteContext } from '../context.js';
import type { UpstreamView } from '../decision.js';
import type { PipelineEnv } from '../env.js';
import type { SiteStep, StepFactory } from './step.js';

/** What the upstream receives for this request, with `extra` (identity) added. */
export function upstreamView(ctx: SiteContext, env: PipelineEnv, extra?: Pick<UpstreamView, 'identity' | 'sessionId'>): UpstreamView {
  const view: UpstreamView = { publicHost: ctx.site.host, publicScheme: ctx.site.scheme };
  if (ctx.query !== undefined) {
    const cleaned = dropUnsafeRedirect(ctx.query);
    if (cleaned.changed) view.query = cleaned.query;
  }
  if (env.sessions) view.hiddenCookies = env.sessions.hiddenCookies;
  if (extra?.identity) view.identity = extra.identity;
  if (extra?.sessionId) view.sessionId = extra.sessionId;
  return view;
}

/** Passes the request on. */
export const pass: StepFactory<SiteStep> = (env) => (ctx) => ({ kind: 'pass', view: upstreamView(ctx, env) });
