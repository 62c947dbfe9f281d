/**
 * The pages several steps answer with, as decisions.
 */
import type { Decision } from '../decision.js';

/** The 503 page used whenever the directory (or another engine) cannot answer. */
export function unavailablePage(): Decision {
  return {
    kind: 'page',
    status: 503,
    reason: 'store_unavailable',
    headers: { 'retry-after': '5' },
    page: { title: 'Sign-in is temporarily unavailable', paragraphs: ['The gateway cannot reach its tenant directory. Please try again in a moment.'] },
  };
}

/** The 404 page of a login address that names no organisation served here. */
export function unknownTenantPage(reason: 'unknown_tenant' | 'gateway_path_under_api' = 'unknown_tenant'): Decision {
  return {
    kind: 'page',
    status: 404,
    reason,
    page: { title: 'Unknown organisation', paragraphs: ['There is no sign-in page at this address.'], link: { href: '/login', text: 'Find your organisation' } },
  };
}

/** The 429 page of a client over its rate limit. */
export function rateLimitedPage(retryAfterSeconds: number | undefined): Decision {
  return {
    kind: 'page',
    status: 429,
    reason: 'rate_limited',
    headers: { 'retry-after': String(Math.max(1, retryAfterSeconds ?? 60)) },
    page: { title: 'Too many attempts', paragraphs: ['Please wait a minute before trying again.'] },
  };
}
