/**
 * The one request context of the public listener: what the gateway knows about a
 * request, built once and read by every step of the decision.
 *
 * Rules:
 * - a context is built from a described request (method, Host, raw target, headers,
 *   client address), so a decision needs neither fastify nor the proxy;
 * - the raw target is split once; the path every route check reads is the canonical
 *   one (decoded up to three times, `\` as `/`, slashes collapsed, dot segments
 *   resolved, lower-cased): what a lenient router behind the gateway would see;
 * - with an API server configured, `/api/...` is classified after `/api` is stripped;
 * - `site` is set once the Host is resolved; steps after host resolution receive a
 *   {@link SiteContext}, in which it is guaranteed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ClientRecord, TenantRecord } from '../directory/types.js';
import type { UpstreamView } from './decision.js';
import { percentDecode } from '../tenancy/percent.js';

/** A request as a proxy (or the built-in listener) describes it. */
export interface DescribedRequest {
  method: string;
  /** The Host the client asked for, as sent (port included). */
  host: string;
  /** The raw request target: path and query, nothing decoded. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The client's address, as the gateway trusts it. */
  clientAddress: string;
}

/** The resolved Host of a request. */
export interface Site {
  /** Normalised host the client asked for. */
  host: string;
  scheme: 'http' | 'https';
  /** Origin for the redirect URIs built for this request. */
  origin: string;
  /** The tenant the host names; absent on the base host. */
  tenant?: TenantRecord;
}

/** What every step reads. */
export interface RequestContext extends DescribedRequest {
  /** The raw path (no query, nothing decoded). */
  readonly path: string;
  /** The raw query without `?`; undefined when the target has no `?`. */
  readonly query: string | undefined;
  /** The path a lenient router would see, lower-cased; `/api` stripped for the API server. */
  readonly canonical: string;
  /** The raw path with `/api` stripped when the request goes to the API server. */
  readonly routePath: string;
  /** Which upstream the request would go to. */
  readonly upstream: 'webapp' | 'apiserver';
  site?: Site;
  /** The step that decided (set by the pipeline). */
  step?: string;
  /** What the upstream receives, once the request is decided to pass. */
  view?: UpstreamView;
  /** A form_post callback whose body is checked before it goes on. */
  formCallback?: ClientRecord;
}

/** A context whose Host is resolved. */
export interface SiteContext extends RequestContext {
  site: Site;
}

/** Decodes (up to three times), collapses slashes and resolves dot segments: what a lenient router would see. */
function canonicalPath(path: string): string {
  if (!/[%\\]|\/\/|\/\.|^[^/]/.test(path)) {
    const lower = path.toLowerCase();
    return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
  }
  let decoded = path;
  for (let i = 0; i < 3 && decoded.includes('%'); i++) decoded = percentDecode(decoded, 'lenient') ?? decoded;
  decoded = decoded.replace(/\\/g, '/');
  const out: string[] = [];
  for (const seg of decoded.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`.toLowerCase();
}

/**
 * Builds the context of a described request.
 *
 * @param apiPrefix true when an API server takes `/api/*`
 */
export function createContext(req: DescribedRequest, apiPrefix: boolean): RequestContext {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? undefined : req.url.slice(q + 1);
  const api = apiPrefix && (path === '/api' || path.startsWith('/api/'));
  const routePath = api ? path.slice(4) || '/' : path;
  const canonical = canonicalPath(routePath);
  const upstream: RequestContext['upstream'] = api ? 'apiserver' : 'webapp';
  return { method: req.method, host: req.host, url: req.url, headers: req.headers, clientAddress: req.clientAddress, path, query, canonical, routePath, upstream };
}
