/**
 * Sessions of authenticate mode: what the gateway remembers about a logged-in user,
 * and the store interface every backend implements.
 *
 * Rules every store keeps (test/session/session-contract.ts checks them):
 * - ids are 256-bit random values, base64url (43 characters), made by the store;
 * - a session is gone after its TTL (`create`, renewed by `touch`) and is never
 *   returned at or after its absolute `expiresAt`;
 * - unknown, expired or malformed ids read as `undefined`; `touch` and `destroy`
 *   of such ids do nothing; none of them throws;
 * - what `get` returns is a copy: changing it does not change the store;
 * - `consumeOnce` answers true for the first use of a key within its TTL only;
 * - the index finds live sessions by company, by tenant (case-insensitively), and
 *   within a tenant by `sub` or by the provider's `sid`; expired and destroyed
 *   sessions leave it (at the latest when a lookup meets them);
 * - ending sessions (`destroy`, `destroyMany`, `endWhere`) tells every `onEnded`
 *   listener, in this process and, for shared stores, in every process using the
 *   store; a session created while others are being ended is never lost from the index.
 *
 * A leaf module: it imports nothing of the gateway's.
 */
/** Who logged in, as forwarded to the upstream. */
export interface Identity {
  /** The IdP's `sub`. */
  subject: string;
  /** The IdP's `iss`: with `subject`, the user's stable key ('' in sessions made before it was recorded). */
  issuer: string;
  /** Only when the IdP vouches for it (`email_verified: true`) or the provider is trusted to. */
  email?: string;
  name?: string;
  /** External tenant ID, as saved in the company's settings. */
  tenant: string;
  /** ClearML group names, translated and filtered to the tenant's groups. */
  groups: string[];
  admin: boolean;
}

/** One logged-in user's session. Times are milliseconds since the epoch. */
export interface SessionData {
  identity: Identity;
  /** External tenant ID of the session (equals `identity.tenant`); the session is valid on its hosts only. */
  tenant: string;
  /** ClearML company the tenant belongs to. */
  company: string;
  /** client_id of the provider the user logged in with. */
  clientId: string;
  /** Configuration id of that provider (for summaries by provider). */
  providerId?: string;
  /** The provider's session id (the ID token's `sid` claim), for back-channel logout. */
  sid?: string;
  /** The IdP groups at login, untranslated: groups and admin are recomputed from them when the company's mapping changes. */
  idpGroups?: string[];
  /** Kept for `id_token_hint` at logout. */
  idToken?: string;
  /** Kept only to be revoked at logout. */
  accessToken?: string;
  refreshToken?: string;
  createdAt: number;
  lastSeenAt: number;
  /** Absolute end of the session, whatever the activity. */
  expiresAt: number;
}

/**
 * Which sessions an index lookup means: all of a company's, or of a tenant's,
 * optionally narrowed to one provider (`clientId`), one user (`sub`, the identity's
 * subject) and one provider session (`sid`). Every given field must match.
 */
export type SessionQuery =
  | { company: string; tenant?: undefined; clientId?: string; sub?: string; sid?: string }
  | { tenant: string; company?: undefined; clientId?: string; sub?: string; sid?: string };

/** One live session as an index lookup returns it. */
export interface SessionEntry {
  id: string;
  data: SessionData;
}

/** Called with the ids of sessions that just ended (on any replica, for shared stores). */
export type EndedListener = (ids: string[]) => void;

/** Server-side session storage (memory, Redis, ...). */
export interface SessionStore {
  /** Backend name, e.g. `memory`. */
  readonly kind: string;
  /**
   * Stores a new session for `ttlSeconds` of inactivity.
   * @returns its id: 256 random bits, base64url.
   */
  create(data: SessionData, ttlSeconds: number): Promise<string>;
  /** The session, or `undefined` when unknown, expired or `id` is malformed. */
  get(id: string): Promise<SessionData | undefined>;
  /**
   * Optional, for stores that hold sessions in this process: the session as `get`
   * would return it, read synchronously and without a copy. Callers must not change it.
   */
  peek?(id: string): Readonly<SessionData> | undefined;
  /** Records activity: sets `lastSeenAt` and restarts the TTL. Unknown ids are ignored. */
  touch(id: string, lastSeenAt: number, ttlSeconds: number): Promise<void>;
  /** Ends a session. Unknown ids are ignored. */
  destroy(id: string): Promise<void>;
  /**
   * Ends several sessions at once.
   * @returns how many of them were live.
   */
  destroyMany(ids: readonly string[]): Promise<number>;
  /** The live sessions a query matches (copies), in no particular order. */
  find(query: SessionQuery): Promise<SessionEntry[]>;
  /**
   * Ends every live session the query matches and `filter` (when given) accepts.
   * @returns the ids ended.
   */
  endWhere(query: SessionQuery, filter?: (data: SessionData) => boolean): Promise<string[]>;
  /**
   * Listens for ended sessions (logout, revocation, back-channel logout), e.g. to
   * close websockets opened under them.
   * @returns a function that removes the listener.
   */
  onEnded(listener: EndedListener): () => void;
  /**
   * Marks `key` as used for `ttlSeconds`.
   * @returns true the first time the key is seen, false while it is remembered;
   *   used to make login transactions single-use.
   */
  consumeOnce(key: string, ttlSeconds: number): Promise<boolean>;
  /** Optional: how many sessions the store holds (exported as a gauge). */
  count?(): Promise<number>;
  /** Throws when the backend cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The shape of every session id: 32 random bytes in base64url. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;
