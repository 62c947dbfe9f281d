/**
 * The gateway's own paths are never reached through `/api`: with an API server
 * configured, `/api/callback_*`, `/api/login…`, `/api/logout` and the logout
 * endpoints get the 404 page, classified after `/api` is stripped.
 */
import { unknownTenantPage } from './pages.js';
import type { SiteStep, StepFactory } from './step.js';

const GATEWAY_PREFIXES = ['/callback_', '/login/', '/backchannel-logout_', '/frontchannel-logout_'];
const GATEWAY_PATHS = new Set(['/login', '/logout', '/.well-known/jwks.json']);

/** Whether a canonical path is one the gateway answers itself. */
function isGatewayPath(canonical: string): boolean {
  return GATEWAY_PATHS.has(canonical) || GATEWAY_PREFIXES.some((p) => canonical.startsWith(p));
}

/** Refuses gateway paths under `/api`. */
export const apiPrefix: StepFactory<SiteStep> = () => (ctx) =>
  ctx.upstream === 'apiserver' && isGatewayPath(ctx.canonical) ? unknownTenantPage('gateway_path_under_api') : undefined;
