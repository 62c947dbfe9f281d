/**
 * `buildApp(config, deps)`: the whole gateway, two listeners, no globals.
 *
 * Registration order is behaviour: on the public listener the host is resolved and
 * checked before any route runs, the gateway's own routes come before the catch-all
 * proxy, and the proxy is last.
 */
import type { AddressInfo } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import adminApi from './admin/admin-api.js';
import { DirectoryAdmin, providerRulesOf } from './admin/directory-admin.js';
import type { Config } from './config/schema.js';
import { StoreUnavailableError } from './errors.js';
import { CachedDirectory } from './directory/cached-directory.js';
import { createStore, splitPostgresUrl } from './directory/open-store.js';
import { LocalInvalidationBus, type InvalidationBus } from './directory/invalidation-bus.js';
import { PostgresInvalidationBus } from './directory/postgres-invalidation-bus.js';
import type { TenantStore } from './directory/types.js';
import { createLogger } from './logger.js';
import health from './observability/health.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { installErrorPages } from './pages/error-pages.js';
import authenticate, { createAuthenticator, type Authenticator } from './oidc/authenticate.js';
import { loadClientAssertionKey } from './oidc/client-assertion-key.js';
import { ClientRegistry } from './oidc/client-registry.js';
import { Sealer } from './oidc/seal.js';
import upstreamProxy from './proxy/upstream-proxy.js';
import { MemorySessionStore } from './session/memory-store.js';
import { RedisSessionStore, redisClientOptions } from './session/redis-store.js';
import type { SessionStore } from './session/types.js';
import emailDiscovery from './routing/email-discovery.js';
import { guardPostLogoutLocation } from './routing/post-logout-guard.js';
import hostContext from './routing/host-context.js';
import tenantRouting from './routing/tenant-routing.js';
import { normalizeDomain, normalizeHost } from './tenancy/host.js';

/** What `buildApp` may be given instead of building it from the configuration. */
export interface GatewayDeps {
  store?: TenantStore;
  logger?: Logger;
  metrics?: Metrics;
  /** Clock in milliseconds, for the caches. */
  now?: () => number;
  /** Folder relative store paths resolve against. */
  cwd?: string;
  /** Session store for authenticate mode (default: in memory). */
  sessions?: SessionStore;
  /** How directory writes reach other replicas (default: none, a single process). */
  bus?: InvalidationBus;
}

/** A built gateway: both listeners and what they share. */
export interface Gateway {
  readonly config: Config;
  readonly public: FastifyInstance;
  readonly admin: FastifyInstance;
  readonly store: TenantStore;
  readonly directory: CachedDirectory;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Binds both listeners (ports from the config; 0 picks a free one). */
  listen(): Promise<{ public: AddressInfo; admin: AddressInfo }>;
  /** Stops accepting, lets in-flight requests finish, closes the store. */
  close(): Promise<void>;
}

/** The hosts that name no tenant: public.url's host and tenancy.baseDomain. */
export function baseHostsOf(config: Config): Set<string> {
  const out = new Set<string>();
  const fromUrl = normalizeHost(new URL(config.public.url).host);
  if (fromUrl) out.add(fromUrl);
  const base = normalizeDomain(config.tenancy.baseDomain);
  if (base) out.add(base);
  return out;
}

/** The invalidation bus a store needs: NOTIFY for PostgreSQL, none for an embedded store. */
function busFor(config: Config, store: TenantStore, logger: Logger): InvalidationBus {
  if (store.kind !== 'postgres') return new LocalInvalidationBus();
  const { url, schema } = splitPostgresUrl(config.store.url);
  return new PostgresInvalidationBus({ url, ...(schema ? { schema } : {}), logger: logger.child({ component: 'invalidation' }) });
}

/** tenancy.baseDomain in normal form. */
export function baseDomainOf(config: Config): string {
  return normalizeDomain(config.tenancy.baseDomain) ?? config.tenancy.baseDomain.toLowerCase();
}

function fastifyOptions(logger: Logger, bodyLimit: number, trustProxy: string[] | false, requestTimeout: number) {
  return {
    requestTimeout,
    loggerInstance: logger,
    bodyLimit,
    trustProxy,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 500 },
  };
}

/** Builds the gateway: opens the store, wires every plugin in order. Nothing listens yet. */
export async function buildApp(config: Config, deps: GatewayDeps = {}): Promise<Gateway> {
  const logger = deps.logger ?? createLogger(config.log.level);
  const metrics = deps.metrics ?? createMetrics();
  const storeLogger = logger.child({ component: 'store' });
  const store = deps.store ?? (await createStore(config.store.url, { logger: storeLogger, ...(deps.cwd !== undefined ? { cwd: deps.cwd } : {}) }));
  await store.init();
  const redis = config.redis.url ? new Redis(config.redis.url, redisClientOptions()) : undefined;
  if (redis) {
    redis.on('error', (err: Error) => logger.warn({ component: 'redis', err: err.message }, 'Redis connection failed'));
    await redis.connect().catch((err: Error) => logger.error({ component: 'redis', err: err.message }, 'Redis is not reachable yet'));
  }
  const directory = new CachedDirectory(store, {
    max: config.cache.max,
    ttlMs: config.cache.ttlSeconds * 1000,
    negativeTtlMs: config.cache.negativeTtlSeconds * 1000,
    staleMs: config.cache.staleSeconds * 1000,
    counters: metrics.directory,
    ...(deps.now ? { now: deps.now } : {}),
  });
  const baseHosts = baseHostsOf(config);
  const baseDomain = baseDomainOf(config);
  const readiness = [{ name: 'store', check: () => store.ping() }];

  const trust = config.public.trustedProxies.length > 0 ? config.public.trustedProxies : false;
  const pub = Fastify(fastifyOptions(logger.child({ listener: 'public' }), config.public.bodyLimitBytes, trust, config.public.requestTimeoutMs)) as unknown as FastifyInstance;
  const admin = Fastify(fastifyOptions(logger.child({ listener: 'admin' }), config.admin.bodyLimitBytes, false, 30_000)) as unknown as FastifyInstance;

  const anyHostPaths = new Set(['/healthz', '/readyz']);
  pub.decorateRequest('proxyView', undefined);
  installErrorPages(pub);
  await pub.register(health, { checks: readiness });
  await pub.register(rateLimit, {
    global: false,
    ...(redis ? { redis, nameSpace: `${config.redis.keyPrefix}rate-limit:`, skipOnError: true } : {}),
  });
  const perMinute = (max: number) => pub.createRateLimit({ max, timeWindow: 60_000 });
  const limits = { login: perMinute(config.rateLimit.loginPerMinute), callback: perMinute(config.rateLimit.callbackPerMinute) };
  await pub.register(hostContext, { publicUrl: config.public.url, baseHosts, baseDomain, directory, metrics, anyHostPaths });
  let authenticator: Authenticator | undefined;
  let registry: ClientRegistry | undefined;
  const sessions: SessionStore | undefined =
    config.mode !== 'authenticate'
      ? undefined
      : (deps.sessions ?? (redis ? new RedisSessionStore({ client: redis, keyPrefix: config.redis.keyPrefix, logger: logger.child({ component: 'sessions' }) }) : new MemorySessionStore()));
  if (sessions) {
    readiness.push({ name: 'sessions', check: () => sessions.ping() });
    registry = new ClientRegistry({
      httpTimeoutMs: config.oidc.httpTimeoutMs,
      retryMaxSeconds: config.oidc.discoveryRetryMaxSeconds,
      insecureAllowPrivateProviders: config.oidc.insecureAllowPrivateProviders,
      ...(config.oidc.clientAssertionKeyFile ? { clientAssertionKey: await loadClientAssertionKey(config.oidc.clientAssertionKeyFile) } : {}),
      log: logger.child({ component: 'oidc' }),
      ...(deps.now ? { now: deps.now } : {}),
    });
    authenticator = createAuthenticator({
      directory,
      registry,
      sessions,
      sealer: new Sealer(config.session.secret!, config.session.previousSecrets, { purpose: 'tenant-gate login transaction' }),
      metrics,
      secureCookies: new URL(config.public.url).protocol === 'https:',
      sessionCookie: config.session.cookieName,
      sessionTtlSeconds: config.session.ttlSeconds,
      idleSeconds: config.session.idleSeconds,
      transactionSeconds: config.session.transactionSeconds,
      scopes: config.oidc.scopes,
      httpTimeoutMs: config.oidc.httpTimeoutMs,
      allowSettingsProviders: config.sso.allow_settings_providers,
      publicPaths: new Set([...anyHostPaths, '/login', '/logout']),
      ...(deps.now ? { now: deps.now } : {}),
    });
  }
  await pub.register(tenantRouting, {
    directory,
    metrics,
    tenantLogin: config.sso.tenant_login || config.mode === 'authenticate',
    ...(authenticator ? { authenticate: authenticator.hooks } : {}),
    limits,
    allowSettingsProviders: config.sso.allow_settings_providers,
    webappCookie: config.session.webappCookie,
    bodyLimit: config.public.bodyLimitBytes,
    anyHostPaths,
  });
  if (config.sso.tenant_login && !config.sso.only_password_login) {
    await pub.register(emailDiscovery, { directory, metrics, perMinute: config.rateLimit.discoveryPerMinute, bodyLimit: config.public.bodyLimitBytes });
  }
  if (authenticator) await pub.register(authenticate, { authenticator });
  await pub.register(upstreamProxy, {
    webapp: config.upstreams.webapp,
    ...(config.upstreams.apiserver ? { apiserver: config.upstreams.apiserver } : {}),
    connectTimeoutMs: config.upstreams.connectTimeoutMs,
    timeoutMs: config.upstreams.timeoutMs,
    ...(config.mode === 'route' ? { guardLocation: guardPostLogoutLocation } : {}),
  });

  const dropKeys = (keys: string[]) => {
    directory.invalidate(keys);
    for (const k of keys) if (k.startsWith('c:')) registry?.invalidate(k.slice(2));
  };
  const bus = deps.bus ?? busFor(config, store, logger);
  if (bus instanceof PostgresInvalidationBus) {
    readiness.push({
      name: 'invalidation',
      check: async () => {
        if (!bus.connected) throw new StoreUnavailableError(new Error('invalidation listener disconnected'));
      },
    });
  }
  await bus.start({
    onKeys: dropKeys,
    onReset: () => {
      directory.invalidateAll();
      registry?.invalidate();
    },
  });
  const directoryAdmin = new DirectoryAdmin({
    store,
    baseHosts,
    baseDomain,
    providerRules: providerRulesOf(config),
    onWrite: (keys) => {
      dropKeys(keys);
      void bus.publish(keys);
    },
  });
  await admin.register(health, { checks: readiness });
  admin.get('/metrics', { logLevel: 'warn' }, async (_req, reply) =>
    reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  await admin.register(adminApi, { credentials: config.admin.credentials, admin: directoryAdmin, bodyLimit: config.admin.bodyLimitBytes });

  let closed = false;
  return {
    config,
    public: pub,
    admin,
    store,
    directory,
    metrics,
    logger,
    async listen() {
      await pub.listen({ host: config.public.host, port: config.public.port });
      await admin.listen({ host: config.admin.host, port: config.admin.port });
      return { public: pub.server.address() as AddressInfo, admin: admin.server.address() as AddressInfo };
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([pub.close(), admin.close()]);
      await bus.close();
      await Promise.all([store.close(), sessions?.close(), registry?.close()]);
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
