/**
 * Resolves the Host of a request to the base host or a tenant.
 *
 * Rules:
 * - the Host (X-Forwarded-Host only from trusted proxies, as the listener reads it) is
 *   normalised: case, port, trailing dot, punycode; a malformed one gets a 400 page;
 * - public.url's host and tenancy.baseDomain are the base host; `<tenant>.<baseDomain>`
 *   names that tenant when it exists; any other host must be a tenant's custom host;
 *   everything else gets a 421 page and is never passed on;
 * - redirect URIs are built on public.url on the base host, and on
 *   `<public.url scheme>://<host>[:<public.url port>]` on a tenant host;
 * - a cached answer costs no I/O; a store failure on an uncached host is a 503 page;
 *   a client over its budget of unknown names gets `TooManyLookupsError` (429).
 */
import { NOT_CACHED } from '../../directory/cached-directory.js';
import type { TenantRecord } from '../../directory/types.js';
import { StoreUnavailableError } from '../../errors.js';
import { clientKey } from '../../net/client-key.js';
import { classifyHost, normalizeHost } from '../../tenancy/host.js';
import { remembered } from '../../tenancy/remembered.js';
import type { RequestContext, Site } from '../context.js';
import type { Decision } from '../decision.js';
import type { PipelineEnv } from '../env.js';
import { unavailablePage } from './pages.js';

/** Raw Host values remembered with their normal form (they repeat on almost every request). */
const HOST_CACHE_MAX = 1024;

/** Resolves a request's Host: the site, or the decision that ends the request. */
export type HostResolver = (ctx: RequestContext) => Site | Decision | Promise<Site | Decision>;

type Resolution = TenantRecord | null | undefined;

/** Builds the Host resolver of a listener. */
export function resolveHost(env: PipelineEnv): HostResolver {
  const url = new URL(env.hosts.publicUrl);
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  const portSuffix = url.port ? `:${url.port}` : '';
  const baseOrigin = url.origin;
  const classify = { baseHosts: env.hosts.baseHosts, baseDomain: env.hosts.baseDomain };
  const normalize = remembered(normalizeHost, HOST_CACHE_MAX);
  const { directory, metrics } = env;

  function cached(host: string): Resolution | typeof NOT_CACHED {
    const kind = classifyHost(host, classify);
    if (kind.kind === 'base') return null;
    const tenantId = kind.kind === 'vanity' ? kind.tenant : directory.peek('host', host);
    if (tenantId === undefined || tenantId === NOT_CACHED) return tenantId;
    return directory.peek('tenant', tenantId);
  }

  async function lookup(host: string, client: { client: string }): Promise<Resolution> {
    const kind = classifyHost(host, classify);
    if (kind.kind === 'base') return null;
    const tenantId = kind.kind === 'vanity' ? kind.tenant : await directory.tenantByHost(host, client);
    if (tenantId === undefined) return undefined;
    return directory.tenant(tenantId, client);
  }

  function settle(host: string, tenant: Resolution): Site | Decision {
    if (tenant === undefined) {
      metrics.unknownHost();
      return {
        kind: 'page',
        status: 421,
        reason: 'unknown_host',
        page: { title: 'Unknown address', paragraphs: ['This address is not served here. Check the link you followed.'] },
      };
    }
    return tenant === null ? { host, scheme, origin: baseOrigin } : { host, scheme, origin: `${scheme}://${host}${portSuffix}`, tenant };
  }

  return (ctx) => {
    const host = normalize(ctx.host);
    if (host === undefined) {
      metrics.unknownHost();
      return { kind: 'page', status: 400, reason: 'bad_host', page: { title: 'Bad request', paragraphs: ['The request names no valid host.'] } };
    }
    const hit = cached(host);
    if (hit !== NOT_CACHED) return settle(host, hit);
    return lookup(host, { client: clientKey(ctx.clientAddress) }).then(
      (tenant) => settle(host, tenant),
      (err: unknown) => {
        if (err instanceof StoreUnavailableError) return unavailablePage();
        throw err;
      },
    );
  };
}
