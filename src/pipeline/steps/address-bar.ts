/**
 * Nothing unsafe stays in the address bar: a page navigation whose `redirect`, `rd`,
 * `next` or `return_to` parameter is an unsafe redirect target is answered 303 to the
 * same address without it (the rest of the query kept byte for byte), before any
 * login or the webapp is involved. `redirect` must always be a safe relative path;
 * the other names are refused only when their value looks like a redirect target
 * (starts with `/` or `\`, or names a scheme), so `?next=2` stays. Login pages the
 * gateway passes on itself (route mode) apply the same check (steps/tenant-login.ts);
 * the gateway's own redirects and pages drop unsafe values themselves.
 */
import { isPageNavigation, singleQueryParam } from '../../routing/request-shape.js';
import { percentDecode } from '../../tenancy/percent.js';
import { safeRelativeRedirect } from '../../tenancy/redirect.js';
import type { SiteContext } from '../context.js';
import type { Decision } from '../decision.js';
import type { SiteStep, StepFactory } from './step.js';

const NAMES = new Set(['redirect', 'rd', 'next', 'return_to']);
const HINT = /redirect|rd|next|return_to/i;
/** A raw path that stays on this origin as a Location: one leading `/`, no `\`, no space or control character. */
const SAME_ORIGIN_PATH = /^\/(?![/\\])[^\\\x00-\x20\x7f]*$/;
const LOOKS_LIKE_TARGET = /^\s*(?:[/\\]|[a-z][a-z0-9+.-]*:)/i;

function formDecode(s: string): string | undefined {
  return percentDecode(s.replace(/\+/g, ' '), 'strict');
}

/** Whether one query pair must leave the address bar. */
function unsafePair(pair: string, rawQuery: string): boolean {
  const eq = pair.indexOf('=');
  const name = formDecode(eq < 0 ? pair : pair.slice(0, eq))?.toLowerCase();
  if (name === undefined) return false;
  if (!NAMES.has(name)) return false;
  const value = eq < 0 ? '' : formDecode(pair.slice(eq + 1));
  if (value === undefined) return true;
  if (name === 'redirect') {
    const single = singleQueryParam(rawQuery, 'redirect');
    return single === undefined || safeRelativeRedirect(single) === undefined || !pair.startsWith('redirect=');
  }
  return LOOKS_LIKE_TARGET.test(value) && safeRelativeRedirect(value.trim()) === undefined;
}

/**
 * The query without its unsafe redirect parameters, or undefined when nothing is unsafe.
 */
function withoutUnsafeTargets(rawQuery: string): string | undefined {
  if (!HINT.test(rawQuery)) return undefined;
  const pairs = rawQuery.split('&');
  const kept = pairs.filter((p) => !unsafePair(p, rawQuery));
  return kept.length === pairs.length ? undefined : kept.join('&');
}

/** The 303 without the unsafe parameters, for a page navigation that carries one. */
export function cleanAddress(ctx: SiteContext): Decision | undefined {
  if (ctx.query === undefined || !isPageNavigation(ctx.method, ctx.path, ctx.headers)) return undefined;
  const rest = withoutUnsafeTargets(ctx.query);
  if (rest === undefined) return undefined;
  const path = SAME_ORIGIN_PATH.test(ctx.path) ? ctx.path : '/';
  return { kind: 'redirect', status: 303, location: rest === '' ? path : `${path}?${rest}`, reason: 'unsafe_redirect_param' };
}

/** Answers 303 without the unsafe parameters for page navigations. */
export const addressBar: StepFactory<SiteStep> = () => cleanAddress;
