/**
 * The signed identity assertion (X-Auth-Request-Jwt) of a session, for one view.
 *
 * Rules:
 * - claims: `iss` = public.url, `aud` = the company's `assertion_audience` or else the
 *   origin the user is on, `sub`, `idp` (the IdP's issuer), `email` (verified only),
 *   `name`, `tenant`, `groups`, `admin`, `iat`, `exp` (`ttlSeconds` later) and `sid`, a
 *   hash of the session id (never the id itself, which is a bearer credential);
 * - ES256 with the key ring's current key; the header names the `kid`;
 * - one token per session and origin is kept and reused until shortly before it
 *   expires, until the session's identity headers change (a new identity object) or
 *   until the signing key changes, so the proxy path signs about once per `ttlSeconds`
 *   per user, not once per request.
 */
import { createHash } from 'node:crypto';
import { SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import type { SessionData } from '../session/types.js';
import { ASSERTION_ALG, type KeyRing } from './keys.js';

/** Options of {@link AssertionSigner}. */
export interface AssertionSignerOptions {
  keys: KeyRing;
  /** `iss`: public.url. */
  issuer: string;
  ttlSeconds: number;
  /** Most tokens kept (one per session and origin). */
  max?: number;
  now?: () => number;
}

interface Entry {
  token: string;
  /** Sign again from this time on (ms). */
  renewAt: number;
  /** The identity this token was made for. */
  identity: object;
  /** The key that signed it. */
  kid: string;
}

/** Origins one session keeps a token for (a user moves between a few hosts at most). */
const MAX_VIEWS_PER_SESSION = 8;

/** A hash of the session id for the `sid` claim: ties assertions of one session together without revealing it. */
function sessionHash(sessionId: string): string {
  return createHash('sha256').update(`tenant-gate sid\n${sessionId}`).digest('base64url').slice(0, 32);
}

/** Signs and caches assertions. */
export class AssertionSigner {
  readonly #o: AssertionSignerOptions;
  readonly #now: () => number;
  /** Session id -> view -> token: no key string is built on the request path. */
  readonly #cache: LRUCache<string, Map<string, Entry>>;
  readonly #renewBeforeMs: number;

  constructor(opts: AssertionSignerOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#cache = new LRUCache({ max: opts.max ?? 10_000 });
    this.#renewBeforeMs = Math.min(10_000, (opts.ttlSeconds * 1000) / 4);
  }

  /** The cached token of this session and view, when still fresh. `identity` is the object the token must describe. */
  cached(sessionId: string, view: string, identity: object): string | undefined {
    const e = this.#cache.get(sessionId)?.get(view);
    return e && e.identity === identity && this.#now() < e.renewAt && e.kid === this.#o.keys.current().kid ? e.token : undefined;
  }

  /** Signs a token for the session and caches it under the view. */
  async sign(sessionId: string, view: string, identity: object, data: Readonly<SessionData>, audience: string): Promise<string> {
    const id = data.identity;
    const iat = Math.floor(this.#now() / 1000);
    const { kid, key } = this.#o.keys.current();
    const token = await new SignJWT({
      ...(id.issuer ? { idp: id.issuer } : {}),
      ...(id.email !== undefined ? { email: id.email } : {}),
      ...(id.name !== undefined ? { name: id.name } : {}),
      tenant: data.tenant,
      groups: id.groups,
      admin: id.admin,
      sid: sessionHash(sessionId),
    })
      .setProtectedHeader({ alg: ASSERTION_ALG, kid, typ: 'JWT' })
      .setIssuer(this.#o.issuer)
      .setAudience(audience)
      .setSubject(id.subject)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.#o.ttlSeconds)
      .sign(key);
    let views = this.#cache.get(sessionId);
    if (!views) this.#cache.set(sessionId, (views = new Map()));
    if (views.size >= MAX_VIEWS_PER_SESSION) views.clear();
    views.set(view, { token, identity, kid, renewAt: iat * 1000 + this.#o.ttlSeconds * 1000 - this.#renewBeforeMs });
    return token;
  }
}
