/**
 * What the gateway decides for a public request. A decision is data: the fastify
 * adapter (or a forward-auth endpoint) turns it into a reply.
 */
import type { ClientRecord, TenantRecord } from '../directory/types.js';
import type { Page } from '../pages/render.js';
import type { CallbackRefusalReason, PageReason } from '../reasons.js';
import type { CallbackParams } from '../tenancy/callback.js';

/** What the upstream receives for a request that is passed on. */
export interface UpstreamView {
  /** Normalised host the client asked for, and the public scheme. */
  publicHost: string;
  publicScheme: 'http' | 'https';
  /** Query string to send instead of the client's (without `?`); '' sends none. */
  query?: string;
  /** Identity headers set by the gateway (authenticate mode). */
  identity?: Readonly<Record<string, string>>;
  /** Cookie names the upstream must not see. */
  hiddenCookies?: readonly string[];
  /** The session the request is passed on under (authenticate mode). */
  sessionId?: string;
  /** The signed identity assertion, sent as X-Auth-Request-Jwt (set by src/assertion/plugin.ts). */
  assertion?: string;
}

/** A decision: exactly one of these. */
export type Decision =
  /** Pass the request to the upstream with this view. */
  | { kind: 'pass'; view: UpstreamView }
  /** A route of the gateway itself answers (probes, email discovery). */
  | { kind: 'local' }
  | { kind: 'redirect'; status: 302 | 303; location: string; reason?: PageReason }
  /** A page rendered by the gateway. */
  | { kind: 'page'; status: number; page: Page; reason: PageReason | CallbackRefusalReason; tenant?: string; headers?: Readonly<Record<string, string>> }
  /** No session on a request that is not a page navigation. */
  | { kind: 'unauthorized' }
  /** Start a login at the tenant's identity provider (authenticate mode). */
  | { kind: 'login'; tenant: TenantRecord; redirect?: string; loginHint?: string }
  /** Complete a validated callback (authenticate mode). */
  | { kind: 'callback'; client: ClientRecord; params: CallbackParams }
  /** A form_post callback whose body is checked once it is read; then completed or passed on. */
  | { kind: 'form-callback'; client: ClientRecord; view: UpstreamView }
  /** End the session (authenticate mode). */
  | { kind: 'logout' };

