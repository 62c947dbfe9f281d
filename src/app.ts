/**
 * `buildApp(config, deps)`: the whole gateway, two listeners, no globals.
 *
 * Three parts, in order: the backends are opened (store, Redis, directory cache,
 * sessions, invalidation bus), the public listener is built (probes, the request
 * pipeline, the gateway's own routes, the proxy last), and the admin listener.
 * Registration order is behaviour.
 */
import type { AddressInfo } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import adminApi from './admin/admin-api.js';
import { SessionsAdmin } from './admin/sessions-admin.js';
import { tenantOrigins } from './cli/describe.js';
import { AuthThrottle } from './admin/basic-auth.js';
import { DirectoryAdmin, providerRulesOf } from './admin/directory-admin.js';
import identityAssertion, { JWKS_PATH, assertionFor, setupAssertion } from './assertion/plugin.js';
import type { Config } from './config/schema.js';
import { CachedDirectory } from './directory/cached-directory.js';
import { createStore, splitPostgresUrl } from './directory/open-store.js';
import { LocalInvalidationBus, type InvalidationBus } from './directory/invalidation-bus.js';
import { clientIdsOfKeys } from './directory/invalidation.js';
import { PostgresInvalidationBus } from './directory/postgres-invalidation-bus.js';
import type { TenantStore } from './directory/types.js';
import { createLogger } from './logger.js';
import health from './observability/health.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { providerCallHook } from './observability/provider-calls.js';
import requestTiming, { upstreamObserver } from './observability/request-timing.js';
import { tracedSessions, tracedStore } from './observability/traced-backends.js';
import { createTracing, tracingSettings, type Tracing } from './observability/tracing.js';
import { pageClientErrorHandler } from './pages/client-error.js';
import { installErrorPages } from './pages/error-pages.js';
import { createAuthenticator, type Authenticator } from './oidc/authenticate.js';
import { loadClientAssertionKey } from './oidc/client-assertion-key.js';
import logoutChannels, { type KeysFor } from './oidc/logout-channels.js';
import { ClientRegistry } from './oidc/client-registry.js';
import { Sealer } from './oidc/seal.js';
import { edgeLimits } from './proxy/fair-share.js';
import upstreamProxy from './proxy/upstream-proxy.js';
import { MemorySessionStore } from './session/memory-store.js';
import { RedisSessionStore, redisClientOptions } from './session/redis-store.js';
import type { SessionStore } from './session/types.js';
import emailDiscovery from './routing/email-discovery.js';
import { guardPostLogoutLocation } from './routing/post-logout-guard.js';
import type { Limiter, PipelineEnv } from './pipeline/env.js';
import gatePlugin from './pipeline/gate-plugin.js';
import { createDecider } from './pipeline/decide.js';
import forwardAuth, { forwardAuthPaths } from './forward-auth/index.js';
import { createFrontDoor } from './net/front-door.js';
import type { ReadinessCheck } from './observability/health.js';
import { normalizeDomain, normalizeHost } from './tenancy/host.js';
import type { Duplex } from 'node:stream';
import { SessionSockets } from './proxy/session-sockets.js';

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
  /** Tracing (default: from the config and the OTEL_* environment). */
  tracing?: Tracing;
  /** Keys that verify a provider's logout tokens (default: its JWKS). */
  logoutKeys?: KeysFor;
  /** Bounds admin authentication guessing (default: built on the gateway's metrics). */
  adminThrottle?: AuthThrottle;
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

function fastifyOptions(logger: FastifyBaseLogger, bodyLimit: number, trustProxy: string[] | false, requestTimeout: number) {
  return {
    requestTimeout,
    loggerInstance: logger,
    bodyLimit,
    trustProxy,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 500 },
  };
}

/** What both listeners share, opened before either is built. */
interface Backends {
  logger: Logger;
  metrics: Metrics;
  tracing: Tracing;
  store: TenantStore;
  redis: Redis | undefined;
  directory: CachedDirectory;
  sessions: SessionStore | undefined;
  registry: ClientRegistry | undefined;
  bus: InvalidationBus;
  readiness: ReadinessCheck[];
  /** Drops cached directory entries and the OIDC clients they affect. */
  dropKeys(keys: string[]): void;
}

/** The paths answered on any Host (probes). */
const ANY_HOST_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/** Opens the store, Redis, the directory cache, sessions and the invalidation bus. */
async function openBackends(config: Config, deps: GatewayDeps): Promise<Backends> {
  const logger = deps.logger ?? createLogger(config.log.level);
  const metrics = deps.metrics ?? createMetrics();
  const tracing = deps.tracing ?? createTracing(tracingSettings(config.tracing, process.env));
  const storeLogger = logger.child({ component: 'store' });
  const store = deps.store ?? (await createStore(config.store.url, { logger: storeLogger, ...(deps.cwd !== undefined ? { cwd: deps.cwd } : {}) }));
  await store.init();
  const redis = config.redis.url ? new Redis(config.redis.url, redisClientOptions()) : undefined;
  if (redis) {
    redis.on('error', (err: Error) => logger.warn({ component: 'redis', err: err.message }, 'Redis connection failed'));
    await redis.connect().catch((err: Error) => logger.error({ component: 'redis', err: err.message }, 'Redis is not reachable yet'));
  }
  const directory = new CachedDirectory(tracing.enabled ? tracedStore(store, tracing) : store, {
    max: config.cache.max,
    ttlMs: config.cache.ttlSeconds * 1000,
    negativeTtlMs: config.cache.negativeTtlSeconds * 1000,
    negativeMax: config.cache.negativeMax,
    unknownPerMinute: config.cache.unknownPerClientPerMinute,
    staleMs: config.cache.staleSeconds * 1000,
    counters: metrics.directory,
    ...(deps.now ? { now: deps.now } : {}),
  });
  const readiness: ReadinessCheck[] = [{ name: 'store', check: () => store.ping() }];
  let sessions: SessionStore | undefined;
  let registry: ClientRegistry | undefined;
  if (config.mode === 'authenticate') {
    sessions =
      deps.sessions ??
      (redis
        ? new RedisSessionStore({ client: redis, keyPrefix: config.redis.keyPrefix, logger: logger.child({ component: 'sessions' }), onExpired: (n) => metrics.sessionsEnded('expired', n) })
        : new MemorySessionStore({ onExpired: (n) => metrics.sessionsEnded('expired', n) }));
    const s = sessions;
    if (s.count) metrics.watchSessions(s.count.bind(s));
    if (tracing.enabled) sessions = tracedSessions(s, tracing);
    readiness.push({ name: 'sessions', check: () => s.ping() });
    registry = new ClientRegistry({
      httpTimeoutMs: config.oidc.httpTimeoutMs,
      retryMaxSeconds: config.oidc.discoveryRetryMaxSeconds,
      insecureAllowPrivateProviders: config.oidc.insecureAllowPrivateProviders,
      ...(config.oidc.clientAssertionKeyFile ? { clientAssertionKey: await loadClientAssertionKey(config.oidc.clientAssertionKeyFile) } : {}),
      log: logger.child({ component: 'oidc' }),
      instrument: providerCallHook(metrics, tracing),
      ...(deps.now ? { now: deps.now } : {}),
    });
  }
  const bus = deps.bus ?? busFor(config, store, logger);
  if (bus.kind !== 'local') readiness.push({ name: 'invalidation', check: () => bus.check() });
  const dropKeys = (keys: string[]) => {
    directory.invalidate(keys);
    for (const clientId of clientIdsOfKeys(keys)) registry?.invalidate(clientId);
  };
  await bus.start({
    onKeys: dropKeys,
    onReset: () => {
      directory.invalidateAll();
      registry?.invalidate();
    },
  });
  metrics.watchBackends([...readiness, ...(redis ? [{ name: 'redis', check: async () => void (await redis.ping()) }] : [])]);
  return { logger, metrics, tracing, store, redis, directory, sessions, registry, bus, readiness, dropKeys };
}

/** Builds authenticate mode over the backends (undefined in route mode). */
function authenticatorFor(config: Config, b: Backends, deps: GatewayDeps): Authenticator | undefined {
  if (!b.sessions || !b.registry) return undefined;
  return createAuthenticator({
    directory: b.directory,
    registry: b.registry,
    sessions: b.sessions,
    sealer: new Sealer(config.session.secret!, config.session.previousSecrets, { purpose: 'tenant-gate login transaction' }),
    metrics: b.metrics,
    secureCookies: new URL(config.public.url).protocol === 'https:',
    sessionCookie: config.session.cookieName,
    sessionTtlSeconds: config.session.ttlSeconds,
    idleSeconds: config.session.idleSeconds,
    transactionSeconds: config.session.transactionSeconds,
    scopes: config.oidc.scopes,
    httpTimeoutMs: config.oidc.httpTimeoutMs,
    log: b.logger.child({ component: 'sessions' }),
    ...(deps.now ? { now: deps.now } : {}),
  });
}

/** Builds the public listener: probes, rate limits, the request pipeline, the gateway's routes, the proxy last. */
async function buildPublic(config: Config, b: Backends, deps: GatewayDeps): Promise<FastifyInstance> {
  const trust = config.public.trustedProxies.length > 0 ? config.public.trustedProxies : false;
  const frontDoor = createFrontDoor();
  const pub: FastifyInstance = Fastify({
    ...fastifyOptions(b.logger.child({ listener: 'public' }), config.public.bodyLimitBytes, trust, config.public.requestTimeoutMs),
    clientErrorHandler: pageClientErrorHandler,
    serverFactory: frontDoor.serverFactory,
  });
  await pub.register(requestTiming, { metrics: b.metrics, tracing: b.tracing });
  installErrorPages(pub);
  await pub.register(health, { checks: b.readiness });
  await pub.register(rateLimit, {
    global: false,
    ...(b.redis ? { redis: b.redis, nameSpace: `${config.redis.keyPrefix}rate-limit:`, skipOnError: true } : {}),
  });
  const perMinute = (max: number): Limiter => {
    const check = pub.createRateLimit({ max, timeWindow: 60_000 });
    return async (clientAddress) => {
      const r = await check(rateLimitSubject(clientAddress));
      return r.isAllowed || !r.isExceeded ? { allowed: true } : { allowed: false, retryAfterSeconds: r.ttlInSeconds ?? 60 };
    };
  };
  const authenticator = authenticatorFor(config, b, deps);
  const fa = forwardAuthPaths(config.forwardAuth.path);
  const assertion = await setupAssertion(config, b.store, b.directory, b.logger, deps.now);
  const env: PipelineEnv = {
    mode: config.mode,
    directory: b.directory,
    metrics: b.metrics,
    hosts: { publicUrl: config.public.url, baseHosts: baseHostsOf(config), baseDomain: baseDomainOf(config) },
    anyHostPaths: new Set([...ANY_HOST_PATHS, ...(assertion ? [JWKS_PATH] : []), ...fa.exact]),
    anyHostPrefix: fa.anyMethodPrefix,
    tenantLogin: config.sso.tenant_login || config.mode === 'authenticate',
    allowSettingsProviders: config.sso.allow_settings_providers,
    apiPrefix: config.upstreams.apiserver !== undefined,
    webappCookie: config.session.webappCookie,
    limits: { login: perMinute(config.rateLimit.loginPerMinute), callback: perMinute(config.rateLimit.callbackPerMinute) },
    ...(authenticator ? { sessions: authenticator.sessions } : {}),
  };
  let onSessionUpgrade: ((sessionId: string, socket: Duplex) => void) | undefined;
  if (authenticator && b.sessions) {
    const sockets = new SessionSockets({ stillValid: (id) => authenticator.stillValid(id) });
    const stopListening = b.sessions.onEnded((ids) => sockets.end(ids));
    pub.addHook('onClose', async () => {
      stopListening();
      sockets.close();
    });
    onSessionUpgrade = (sessionId, socket) => sockets.add(sessionId, socket);
  }
  await pub.register(gatePlugin, {
    env,
    ...(authenticator ? { handlers: authenticator.handlers } : {}),
    ...(onSessionUpgrade ? { onSessionUpgrade } : {}),
    bodyLimit: config.public.bodyLimitBytes,
    ...(b.tracing.enabled ? { tracing: b.tracing } : {}),
  });
  const { path: prefix, cacheSeconds } = config.forwardAuth;
  await pub.register(forwardAuth, {
    decider: createDecider(env),
    apiPrefix: env.apiPrefix,
    mode: config.mode,
    prefix,
    trustedProxies: config.public.trustedProxies,
    cacheSeconds,
    ...(assertion ? { assertion: assertionFor(assertion) } : {}),
    frontDoor,
    metrics: b.metrics,
    tracing: b.tracing,
  });
  if (b.sessions && b.registry) {
    await pub.register(logoutChannels, {
      directory: b.directory,
      registry: b.registry,
      sessions: b.sessions,
      metrics: b.metrics,
      limit: perMinute(config.rateLimit.logoutPerMinute),
      httpTimeoutMs: config.oidc.httpTimeoutMs,
      bodyLimit: config.public.bodyLimitBytes,
      ...(deps.logoutKeys ? { keysFor: deps.logoutKeys } : {}),
      ...(deps.now ? { now: deps.now } : {}),
    });
  }
  if (assertion) await pub.register(identityAssertion, assertion);
  if (config.sso.tenant_login && !config.sso.only_password_login) {
    await pub.register(emailDiscovery, { directory: b.directory, metrics: b.metrics, perMinute: config.rateLimit.discoveryPerMinute, bodyLimit: config.public.bodyLimitBytes });
  }
  await pub.register(upstreamProxy, {
    webapp: config.upstreams.webapp,
    ...(config.upstreams.apiserver ? { apiserver: config.upstreams.apiserver } : {}),
    connectTimeoutMs: config.upstreams.connectTimeoutMs,
    timeoutMs: config.upstreams.timeoutMs,
    dropUnderscoreHeaders: config.public.dropUnderscoreHeaders,
    observer: upstreamObserver(b.tracing),
    ...(config.mode === 'route' ? { guardLocation: guardPostLogoutLocation } : {}),
    ...edgeLimits(config),
  });
  return pub;
}

/** The minimal request a per-address rate limit check reads (its key is the address). */
function rateLimitSubject(ip: string): FastifyRequest {
  const subject: Pick<FastifyRequest, 'ip'> & { routeOptions: { config: Record<string, never> } } = { ip, routeOptions: { config: {} } };
  return subject as unknown as FastifyRequest;
}

/** Builds the admin listener: probes, metrics and the admin API. */
async function buildAdmin(config: Config, b: Backends, deps: GatewayDeps): Promise<FastifyInstance> {
  const admin: FastifyInstance = Fastify(fastifyOptions(b.logger.child({ listener: 'admin' }), config.admin.bodyLimitBytes, false, 30_000));
  const directoryAdmin = new DirectoryAdmin({
    store: b.store,
    baseHosts: baseHostsOf(config),
    baseDomain: baseDomainOf(config),
    providerRules: providerRulesOf(config),
    onWrite: (keys) => {
      b.dropKeys(keys);
      void b.bus.publish(keys);
    },
  });
  await admin.register(health, { checks: b.readiness });
  admin.get('/metrics', { logLevel: 'warn' }, async (_req, reply) =>
    reply.header('content-type', b.metrics.registry.contentType).send(await b.metrics.registry.metrics()),
  );
  const throttle = deps.adminThrottle ?? new AuthThrottle({ metrics: b.metrics.adminAuth });
  const sessions = new SessionsAdmin({ sessions: b.sessions, metrics: b.metrics, log: b.logger.child({ component: 'admin' }) });
  await admin.register(adminApi, {
    credentials: config.admin.credentials,
    admin: directoryAdmin,
    sessions,
    ...(b.sessions ? { originsOf: (tenant: string, hosts: string[]) => tenantOrigins(config, tenant, hosts) } : {}),
    bodyLimit: config.admin.bodyLimitBytes,
    onAuthFailure: (reason) => b.metrics.adminAuthFailure(reason),
    throttle,
  });
  return admin;
}

/** Builds the gateway: opens the backends, builds both listeners. Nothing listens yet. */
export async function buildApp(config: Config, deps: GatewayDeps = {}): Promise<Gateway> {
  const b = await openBackends(config, deps);
  const pub = await buildPublic(config, b, deps);
  const admin = await buildAdmin(config, b, deps);
  let closed = false;
  return {
    config,
    public: pub,
    admin,
    store: b.store,
    directory: b.directory,
    metrics: b.metrics,
    logger: b.logger,
    async listen() {
      await pub.listen({ host: config.public.host, port: config.public.port });
      await admin.listen({ host: config.admin.host, port: config.admin.port });
      return { public: pub.server.address() as AddressInfo, admin: admin.server.address() as AddressInfo };
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([pub.close(), admin.close()]);
      await b.bus.close();
      await Promise.all([b.store.close(), b.sessions?.close(), b.registry?.close()]);
      if (b.redis) await b.redis.quit().catch(() => b.redis?.disconnect());
      await b.tracing.shutdown().catch(() => undefined);
    },
  };
}
