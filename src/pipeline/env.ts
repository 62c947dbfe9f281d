/**
 * What the steps of the decision may use: the directory, the settings that change a
 * decision, per-client limits and, in authenticate mode, the session lookup. Built
 * once per listener; no step keeps state of its own.
 */
import type { CachedDirectory } from '../directory/cached-directory.js';
import type { Metrics } from '../observability/metrics.js';
import type { SessionData } from '../session/types.js';
import type { SiteContext } from './context.js';

/** The result of a per-client rate limit check. */
interface LimitResult {
  allowed: boolean;
  /** Seconds until the client may try again (when not allowed). */
  retryAfterSeconds?: number;
}

/** A per-client rate limit (keyed by client address). */
export type Limiter = (clientAddress: string) => Promise<LimitResult>;

/** A session accepted for a request. */
export interface LoadedSession {
  id: string;
  /** As the store holds it: never changed by the pipeline. */
  data: Readonly<SessionData>;
}

/** How the pipeline sees sessions in authenticate mode. */
export interface SessionAccess {
  /** The request's session valid on this host: at once when the store can tell, later otherwise. */
  load(ctx: SiteContext): LoadedSession | null | Promise<LoadedSession | null>;
  /** The identity headers of a session. */
  identityOf(session: LoadedSession): Readonly<Record<string, string>>;
  /** The gateway's cookies, never passed upstream. */
  readonly hiddenCookies: readonly string[];
}

/** Resolves a Host to the base host, a tenant, or nothing. */
interface HostSettings {
  publicUrl: string;
  baseHosts: ReadonlySet<string>;
  baseDomain: string;
}

/** Everything the steps read besides the request. */
export interface PipelineEnv {
  mode: 'route' | 'authenticate';
  directory: CachedDirectory;
  metrics: Metrics;
  hosts: HostSettings;
  /** Paths answered on any Host (probes), for GET and HEAD. */
  anyHostPaths: ReadonlySet<string>;
  /** Paths under this prefix are answered on any Host, for any method (forward-auth's Envoy endpoint). */
  anyHostPrefix?: string;
  /** `/login/<tenant>` and vanity redirects (sso.tenant_login, always on in authenticate mode). */
  tenantLogin: boolean;
  /** Providers that belong to no tenant may complete callbacks. */
  allowSettingsProviders: boolean;
  /** An API server takes `/api/*`. */
  apiPrefix: boolean;
  /** Route mode: the webapp's session cookie. */
  webappCookie: string;
  limits: { login?: Limiter; callback?: Limiter };
  /** Authenticate mode only. */
  sessions?: SessionAccess;
}
