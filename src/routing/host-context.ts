/**
 * Resolves the Host of every public request before any route runs.
 *
 * Rules:
 * - the Host (or X-Forwarded-Host, only from configured trusted proxies) is
 *   normalised: case, port, trailing dot, punycode; a malformed one gets 400;
 * - the base host (public.url's host, tenancy.baseDomain) names no tenant;
 *   `<tenant>.<baseDomain>` names that tenant when it exists; any other host must be
 *   a tenant's custom host; everything else gets a 421 page and is never proxied;
 * - the origin redirect URIs are built on is public.url on the base host, and
 *   `<public.url scheme>://<host>[:<public.url port>]` on a tenant host;
 * - a store failure on an uncached host is a 503 page with Retry-After.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { NOT_CACHED, type CachedDirectory } from '../directory/cached-directory.js';
import { clientKey } from '../net/client-key.js';
import type { TenantRecord } from '../directory/types.js';
import { StoreUnavailableError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { sendPage } from '../pages/render.js';
import { classifyHost, normalizeHost } from '../tenancy/host.js';
import { remembered } from '../tenancy/remembered.js';
import { decisionHook, type Decision } from './decision-hook.js';

/** Raw Host values remembered with their normal form (they repeat on almost every request). */
const HOST_CACHE_MAX = 1024;

/** What the gateway knows about the host of a request. */
export interface GateContext {
  /** Normalised host the client asked for. */
  host: string;
  scheme: 'http' | 'https';
  /** Origin for redirect URIs built for this request. */
  origin: string;
  /** Set on a tenant host: the tenant it names, with its providers. */
  tenant?: TenantRecord;
}

declare module 'fastify' {
  interface FastifyRequest {
    gate: GateContext;
  }
}

/** Options of the host resolution plugin. */
export interface HostContextOptions {
  publicUrl: string;
  baseHosts: ReadonlySet<string>;
  baseDomain: string;
  directory: CachedDirectory;
  metrics: Metrics;
  /** Paths answered whatever the Host (probes). */
  anyHostPaths: ReadonlySet<string>;
}

/** Sends the 503 page used whenever the directory cannot answer. */
export function sendUnavailable(reply: FastifyReply): FastifyReply {
  return sendPage(reply.header('retry-after', '5'), 503, {
    title: 'Sign-in is temporarily unavailable',
    paragraphs: ['The gateway cannot reach its tenant directory. Please try again in a moment.'],
  });
}

async function hostContext(app: FastifyInstance, opts: HostContextOptions): Promise<void> {
  const url = new URL(opts.publicUrl);
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  const portSuffix = url.port ? `:${url.port}` : '';
  const baseOrigin = url.origin;
  const classify = { baseHosts: opts.baseHosts, baseDomain: opts.baseDomain };

  type Resolution = TenantRecord | null | undefined;
  /** The host's tenant from the cache alone (null: the base host; undefined: no tenant). */
  function cachedTenantOfHost(host: string): Resolution | typeof NOT_CACHED {
    const kind = classifyHost(host, classify);
    if (kind.kind === 'base') return null;
    const tenantId = kind.kind === 'vanity' ? kind.tenant : opts.directory.peek('host', host);
    if (tenantId === undefined || tenantId === NOT_CACHED) return tenantId;
    return opts.directory.peek('tenant', tenantId);
  }

  async function tenantOfHost(host: string, client: { client: string }): Promise<Resolution> {
    const kind = classifyHost(host, classify);
    if (kind.kind === 'base') return null;
    const tenantId = kind.kind === 'vanity' ? kind.tenant : await opts.directory.tenantByHost(host, client);
    if (tenantId === undefined) return undefined;
    return opts.directory.tenant(tenantId, client);
  }

  const normalize = remembered(normalizeHost, HOST_CACHE_MAX);

  /** Records the resolution on the request, or answers 421 for a host without a tenant. */
  function settle(req: FastifyRequest, reply: FastifyReply, host: string, tenant: Resolution): FastifyReply | undefined {
    if (tenant === undefined) {
      opts.metrics.unknownHost();
      req.log.info({ host }, 'request for an unknown host refused');
      return sendPage(reply, 421, { title: 'Unknown address', paragraphs: ['This address is not served here. Check the link you followed.'] });
    }
    req.gate = tenant === null ? { host, scheme, origin: baseOrigin } : { host, scheme, origin: `${scheme}://${host}${portSuffix}`, tenant };
    req.proxyView = { publicHost: host, publicScheme: scheme };
    return undefined;
  }

  function resolve(req: FastifyRequest, reply: FastifyReply): Decision {
    const q = req.url.indexOf('?');
    if ((req.method === 'GET' || req.method === 'HEAD') && opts.anyHostPaths.has(q < 0 ? req.url : req.url.slice(0, q))) return undefined;
    const host = normalize(req.host);
    if (host === undefined) {
      opts.metrics.unknownHost();
      return sendPage(reply, 400, { title: 'Bad request', paragraphs: ['The request names no valid host.'] });
    }
    const cached = cachedTenantOfHost(host);
    if (cached !== NOT_CACHED) return settle(req, reply, host, cached);
    return tenantOfHost(host, { client: clientKey(req.ip) }).then(
      (tenant) => settle(req, reply, host, tenant),
      (err: unknown) => {
        if (!(err instanceof StoreUnavailableError)) throw err;
        req.log.error({ host, err: err.detail }, 'tenant directory unavailable');
        return sendUnavailable(reply);
      },
    );
  }

  app.decorateRequest('gate', null as unknown as GateContext);
  app.addHook('onRequest', decisionHook(resolve));
}

/** Registers the host resolution hook; it must come before every other public plugin. */
export default fp(hostContext, { name: 'tenant-gate-host-context', fastify: '5.x' });
