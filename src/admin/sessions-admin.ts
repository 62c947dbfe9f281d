/**
 * What the admin API and the CLI do to live sessions, independent of HTTP.
 *
 * Rules:
 * - a summary counts a company's live sessions, in all and by provider id;
 * - a revocation names a company and either one user (matched against the subject,
 *   or case-insensitively against the verified email) or `all`; it ends the sessions
 *   in the store, which every replica reads, and tells `onEnded` listeners everywhere;
 * - every revocation is an audit log line (`audit: 'sessions_revoked'`) and counted
 *   in the `sessions ended` metric with its cause;
 * - without a session store (route mode) there is nothing to count or end.
 */
import { MissingFieldsError, ValidationError } from '../errors.js';
import type { Metrics, SessionEndCause } from '../observability/metrics.js';
import type { SessionData, SessionStore } from '../session/types.js';

/** Where revocations are audited; a pino logger fits. */
export interface AuditLogger {
  info(obj: object, msg: string): void;
}

/** A revocation request: one user of a company, or all of its sessions. */
export interface RevokeRequest {
  company: string;
  user?: string;
  all?: boolean;
}

/** Whether a session belongs to `user`: its subject, or its verified email (case-insensitively). */
function sessionOfUser(data: SessionData, user: string): boolean {
  if (data.identity.subject === user) return true;
  const email = data.identity.email;
  return email !== undefined && email.toLowerCase() === user.toLowerCase();
}

/** Counts and ends sessions for operators. */
export class SessionsAdmin {
  readonly #sessions: SessionStore | undefined;
  readonly #metrics: Metrics | undefined;
  readonly #log: AuditLogger | undefined;

  constructor(opts: { sessions?: SessionStore | undefined; metrics?: Metrics | undefined; log?: AuditLogger | undefined }) {
    this.#sessions = opts.sessions;
    this.#metrics = opts.metrics;
    this.#log = opts.log;
  }

  /** `{count, by_provider}` of a company's live sessions. */
  async summary(company: string): Promise<{ count: number; by_provider: Record<string, number> }> {
    const found = this.#sessions ? await this.#sessions.find({ company }) : [];
    const byProvider: Record<string, number> = {};
    for (const { data } of found) {
      const key = data.providerId ?? data.clientId;
      byProvider[key] = (byProvider[key] ?? 0) + 1;
    }
    return { count: found.length, by_provider: byProvider };
  }

  /**
   * Ends one user's sessions, or all of a company's.
   * @throws MissingFieldsError without `user` or `all: true`; ValidationError with both.
   */
  async revoke(req: RevokeRequest): Promise<{ revoked: number }> {
    const user = typeof req.user === 'string' && req.user.length > 0 ? req.user : undefined;
    if (user === undefined && req.all !== true) throw new MissingFieldsError(['user', 'all']);
    if (user !== undefined && req.all === true) throw new ValidationError('all', 'give either user or all, not both');
    const ended = await this.end(req.company, 'revoked', user === undefined ? undefined : (d) => sessionOfUser(d, user));
    this.#log?.info({ audit: 'sessions_revoked', company: req.company, ...(user !== undefined ? { user } : { all: true }), revoked: ended }, 'sessions revoked');
    return { revoked: ended };
  }

  /** Ends a company's sessions (those `filter` accepts) for `cause`; returns how many. */
  async end(company: string, cause: SessionEndCause, filter?: (data: SessionData) => boolean): Promise<number> {
    if (!this.#sessions) return 0;
    const ended = await this.#sessions.endWhere({ company }, filter);
    this.#metrics?.sessionsEnded(cause, ended.length);
    return ended.length;
  }
}
