/**
 * The configuration schema: the single source of truth for keys, types and defaults.
 * Every object rejects unknown keys. config/default.yaml documents each key.
 */
import { Type, type Static } from '@sinclair/typebox';


const Seconds = (def: number, min = 1) => Type.Integer({ minimum: min, default: def });
const Millis = (def: number) => Type.Integer({ minimum: 1, default: def });
const strict = { additionalProperties: false } as const;

const Credential = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 256 }),
    secret: Type.String({ minLength: 8, maxLength: 1024 }),
  },
  strict,
);

export const ConfigSchema = Type.Object(
  {
    /** route: decide and proxy; authenticate: also be the OIDC relying party. */
    mode: Type.Union([Type.Literal('route'), Type.Literal('authenticate')], { default: 'route' }),
    /** Worker processes serving the public listener (1 = no cluster). */
    workers: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
    public: Type.Object(
      {
        host: Type.String({ minLength: 1, default: '0.0.0.0' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
        /** Public origin of the base host; its scheme is used for every redirect URI. */
        url: Type.String({ minLength: 1, default: 'http://localhost:8080' }),
        /** Addresses or CIDR ranges whose X-Forwarded-* headers are trusted. */
        trustedProxies: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        /** Largest request body the gateway itself reads, in bytes. */
        bodyLimitBytes: Type.Integer({ minimum: 1024, default: 65536 }),
        /** Time a client has to send a whole request (headers and body), in milliseconds. */
        requestTimeoutMs: Type.Integer({ minimum: 1000, default: 120000 }),
        /** Drop every request header whose name contains `_` before the upstream (as nginx does). */
        dropUnderscoreHeaders: Type.Boolean({ default: true }),
        /** A proxied request body that sends no byte for this long, or a client that reads nothing of the answer for this long, is cut off (ms). */
        bodyIdleTimeoutMs: Type.Integer({ minimum: 100, default: 30000 }),
      },
      { ...strict, default: {} },
    ),
    admin: Type.Object(
      {
        host: Type.String({ minLength: 1, default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8008 }),
        credentials: Type.Array(Credential, { minItems: 1 }),
        /** Largest admin request body, in bytes. */
        bodyLimitBytes: Type.Integer({ minimum: 1024, default: 1048576 }),
      },
      strict,
    ),
    upstreams: Type.Object(
      {
        webapp: Type.String({ minLength: 1 }),
        apiserver: Type.Optional(Type.String({ minLength: 1 })),
        connectTimeoutMs: Millis(2000),
        /** Time allowed for the upstream to answer. */
        timeoutMs: Millis(30000),
        /** Connections kept to each upstream: at most this many requests in flight per upstream. */
        connections: Type.Integer({ minimum: 1, maximum: 10000, default: 256 }),
        /** Upstream requests one client address (IPv6: one /64) may have in flight; beyond it 429. */
        maxConcurrentPerClient: Type.Integer({ minimum: 1, default: 64 }),
        /** Upstream requests one session may have in flight; beyond it 429. */
        maxConcurrentPerSession: Type.Integer({ minimum: 1, default: 32 }),
        /** Longest wait for a free upstream connection; beyond it 503 (ms). */
        queueTimeoutMs: Millis(2000),
      },
      strict,
    ),
    tenancy: Type.Object(
      {
        /** `<tenant>.<baseDomain>` is the vanity host of tenant `<tenant>`. */
        baseDomain: Type.String({ minLength: 1 }),
      },
      strict,
    ),
    store: Type.Object(
      {
        url: Type.String({ minLength: 1, default: 'sqlite:./data/tenant-gate.db' }),
      },
      { ...strict, default: {} },
    ),
    cache: Type.Object(
      {
        /** Most entries kept in the lookup cache. */
        max: Type.Integer({ minimum: 1, default: 10000 }),
        ttlSeconds: Seconds(60),
        /** How long a "no such tenant" answer is cached. */
        negativeTtlSeconds: Seconds(5),
        /** Most "not found" answers kept, apart from the found entries (`max`). */
        negativeMax: Type.Integer({ minimum: 1, default: 10000 }),
        /** Store lookups of unknown hosts (and tenants) per client address per minute; beyond it 429. */
        unknownPerClientPerMinute: Type.Integer({ minimum: 1, default: 120 }),
        /** How long expired entries keep being served while the store fails. */
        staleSeconds: Seconds(300, 0),
      },
      { ...strict, default: {} },
    ),
    session: Type.Object(
      {
        /** Key material for sealed cookies; required in authenticate mode. */
        secret: Type.Optional(Type.String({ minLength: 32 })),
        /** Earlier secrets, still accepted for reading after a rotation. */
        previousSecrets: Type.Array(Type.String({ minLength: 32 }), { default: [] }),
        /** The gateway's own session cookie (authenticate mode). */
        cookieName: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_-]+$', default: 'tg_session' }),
        /** The webapp's session cookie whose presence means "logged in" in route mode. */
        webappCookie: Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.-]+$', default: 'clearml_token_basic' }),
        ttlSeconds: Seconds(28800),
        idleSeconds: Seconds(3600),
        /** Lifetime of a login transaction (authorization request to callback). */
        transactionSeconds: Seconds(600),
      },
      { ...strict, default: {} },
    ),
    sso: Type.Object(
      {
        tenant_login: Type.Boolean({ default: true }),
        allow_settings_providers: Type.Boolean({ default: false }),
        only_password_login: Type.Boolean({ default: false }),
      },
      { ...strict, default: {} },
    ),
    oidc: Type.Object(
      {
        scopes: Type.Array(Type.String({ minLength: 1, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }), {
          default: ['openid', 'profile', 'email'],
        }),
        /** Timeout of each request to an identity provider. */
        httpTimeoutMs: Millis(5000),
        /** Longest wait between discovery retries of a failing provider. */
        discoveryRetryMaxSeconds: Seconds(60),
        /** Allow http and loopback/private/link-local identity provider addresses (tests, demos). */
        insecureAllowPrivateProviders: Type.Boolean({ default: false }),
        /** PEM file (PKCS#8, RSA or EC) of the key for private_key_jwt client authentication. */
        clientAssertionKeyFile: Type.Optional(Type.String({ minLength: 1 })),
      },
      { ...strict, default: {} },
    ),
    assertion: Type.Object(
      {
        /** Send X-Auth-Request-Jwt and publish /.well-known/jwks.json (authenticate mode). */
        enabled: Type.Boolean({ default: true }),
        /** Lifetime of each assertion, in seconds. */
        ttlSeconds: Type.Integer({ minimum: 10, maximum: 3600, default: 60 }),
        /** Each replica re-reads the signing keys at most this often (a rotation reaches it within this time). */
        keyRefreshSeconds: Seconds(60),
        /** After a rotation, the previous public key stays published this long. */
        rotationGraceSeconds: Seconds(86400, 600),
      },
      { ...strict, default: {} },
    ),
    rateLimit: Type.Object(
      {
        /** Per client address, per minute. */
        discoveryPerMinute: Type.Integer({ minimum: 1, default: 60 }),
        loginPerMinute: Type.Integer({ minimum: 1, default: 120 }),
        callbackPerMinute: Type.Integer({ minimum: 1, default: 120 }),
        /** Back- and front-channel logout requests. */
        logoutPerMinute: Type.Integer({ minimum: 1, default: 120 }),
      },
      { ...strict, default: {} },
    ),
    redis: Type.Object(
      {
        url: Type.Optional(Type.String({ minLength: 1 })),
        keyPrefix: Type.String({ default: 'tenant-gate:' }),
      },
      { ...strict, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
      },
      { ...strict, default: {} },
    ),
    /** Forward-auth endpoints: the same decisions for a proxy in front (docs/forward-auth.md). */
    forwardAuth: Type.Object(
      {
        /** Path prefix of the endpoints on the public listener. */
        path: Type.String({ pattern: '^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$', default: '/_auth' }),
        /** max-age of authenticate-mode 200s for a session, in seconds; 0 = never cached. */
        cacheSeconds: Type.Integer({ minimum: 0, maximum: 300, default: 0 }),
      },
      { ...strict, default: {} },
    ),
    /** OpenTelemetry tracing; the standard OTEL_* environment variables also turn it on. */
    tracing: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        /** Full OTLP/HTTP traces URL. */
        endpoint: Type.Optional(Type.String({ minLength: 1, pattern: '^https?://' })),
        serviceName: Type.String({ minLength: 1, default: 'tenant-gate' }),
        /** Share of requests traced (parent-based ratio). */
        sampleRatio: Type.Number({ minimum: 0, maximum: 1, default: 1 }),
      },
      { ...strict, default: {} },
    ),
  },
  strict,
);

/** The validated configuration with every default filled in. */
export type Config = Static<typeof ConfigSchema>;


