/**
 * A provider's signing keys (its JWKS), and the one check every JWT from a provider
 * goes through: ID tokens now, back-channel logout tokens next.
 *
 * Rules:
 * - Algorithms: RS256/384/512, PS256/384/512, ES256/384/512 and EdDSA, with a key from
 *   the provider's JWKS. HS256 only when the provider configuration asks for it, keyed
 *   by the client secret (never by a published key). `none` never.
 * - The JWKS is fetched on first use and kept per provider; a token that names a `kid`
 *   the cached set lacks refetches it at once, one fetch shared by concurrent callers,
 *   and at most one such refetch per `refetchCooldownMs`; a key rotation therefore
 *   costs no failed login, and a stream of made-up `kid`s costs one fetch per cooldown.
 *   A copy older than `maxAgeMs` is refreshed on next use; when that fails the old copy
 *   keeps serving.
 * - `iss` and `aud` are always checked; the expiry with `clockToleranceSeconds`.
 * - Failures are a {@link JwtCheckError} with a stable reason; `jwks_unavailable` is
 *   the provider's fault (retry later), every other reason means the token is refused.
 */
import * as jose from 'jose';

/** JWS algorithms accepted with a key from the provider's JWKS. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
] as const;

/** The one symmetric algorithm a provider may opt into, keyed by the client secret. */
export const SYMMETRIC_ALGORITHM = 'HS256';

/** Why a JWT from a provider was not accepted. */
export type JwtCheckReason =
  /** The header names an algorithm outside the allow-list (`none`, HS* not asked for, ...). */
  | 'alg_not_allowed'
  /** No key of the provider's JWKS matches the token's header, even after a refetch. */
  | 'no_matching_key'
  /** The signature does not verify. */
  | 'bad_signature'
  /** `iss`, `aud`, `exp` or another claim check failed, or the token is malformed. */
  | 'bad_claims'
  /** The provider's JWKS could not be fetched or read. */
  | 'jwks_unavailable';

/** A JWT from a provider that failed its check; `detail` never holds the token. */
export class JwtCheckError extends Error {
  readonly reason: JwtCheckReason;
  constructor(reason: JwtCheckReason, detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    this.name = 'JwtCheckError';
    this.reason = reason;
  }
}

/** Options of {@link ProviderKeys}. */
export interface ProviderKeysOptions {
  jwksUri: string;
  /** Fetch used for the JWKS (timeouts and address checks are the caller's). */
  fetch: typeof fetch;
  /** Least time between two refetches caused by an unknown `kid` (default 30 s). */
  refetchCooldownMs?: number;
  /** Age after which the cached set is refreshed on next use (default 1 h). */
  maxAgeMs?: number;
  now?: () => number;
}

const MAX_JWKS_BYTES = 512 * 1024;

/** One provider's JWKS, cached, refetched on an unknown `kid`. Private state per instance. */
export class ProviderKeys {
  readonly jwksUri: string;
  readonly #fetch: typeof fetch;
  readonly #cooldownMs: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #set: ReturnType<typeof jose.createLocalJWKSet> | undefined;
  #kids = new Set<string>();
  #fetchedAt = 0;
  #lastUnknownKidRefetch = -Infinity;
  #pending: Promise<void> | undefined;
  /** JWKS fetches made so far (for tests and metrics). */
  fetches = 0;

  constructor(opts: ProviderKeysOptions) {
    this.jwksUri = opts.jwksUri;
    this.#fetch = opts.fetch;
    this.#cooldownMs = opts.refetchCooldownMs ?? 30_000;
    this.#maxAgeMs = opts.maxAgeMs ?? 3_600_000;
    this.#now = opts.now ?? Date.now;
  }

  /** The key for a token's protected header; refetches once on an unknown `kid`. */
  async keyFor(header: jose.JWSHeaderParameters, token: jose.FlattenedJWSInput): Promise<jose.CryptoKey> {
    const stale = this.#set !== undefined && this.#now() - this.#fetchedAt >= this.#maxAgeMs;
    if (!this.#set) await this.#load();
    else if (stale) await this.#load().catch(() => undefined);
    try {
      return await this.#set!(header, token);
    } catch (err) {
      if (!(err instanceof jose.errors.JWKSNoMatchingKey)) throw err;
      const known = typeof header.kid === 'string' && this.#kids.has(header.kid);
      const now = this.#now();
      if (known || now - this.#lastUnknownKidRefetch < this.#cooldownMs) throw err;
      if (!this.#pending) this.#lastUnknownKidRefetch = now;
      await this.#load();
      return this.#set!(header, token);
    }
  }

  #load(): Promise<void> {
    if (this.#pending) return this.#pending;
    this.#pending = this.#fetchSet().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #fetchSet(): Promise<void> {
    this.fetches += 1;
    let body: unknown;
    try {
      const res = await this.#fetch(this.jwksUri, { headers: { accept: 'application/json, application/jwk-set+json' }, redirect: 'error' });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      const text = await res.text();
      if (text.length > MAX_JWKS_BYTES) throw new Error('the JWKS is too large');
      body = JSON.parse(text);
    } catch (err) {
      throw new JwtCheckError('jwks_unavailable', `the JWKS at ${this.jwksUri} could not be fetched: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const keys = (body as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) throw new JwtCheckError('jwks_unavailable', `the JWKS at ${this.jwksUri} has no keys array`);
    // Symmetric keys never come from a published set.
    const usable = keys.filter((k): k is jose.JWK => typeof k === 'object' && k !== null && (k as { kty?: unknown }).kty !== 'oct');
    this.#set = jose.createLocalJWKSet({ keys: usable });
    this.#kids = new Set(usable.map((k) => k.kid).filter((kid): kid is string => typeof kid === 'string'));
    this.#fetchedAt = this.#now();
  }
}

/** What a provider JWT is checked against. */
export interface ProviderJwtExpectations {
  keys: ProviderKeys;
  issuer: string;
  audience: string;
  /**
   * Algorithms the provider configuration allows; default {@link ASYMMETRIC_ALGORITHMS}.
   * `HS256` counts only together with `clientSecret`.
   */
  algorithms?: readonly string[];
  /** The client secret, the HS256 key, when the provider configuration asks for HS256. */
  clientSecret?: string;
  clockToleranceSeconds?: number;
  /** Claims that must be present besides `iss`, `aud` (e.g. `exp`, `iat`, `sub`). */
  requiredClaims?: string[];
  /** Expected `typ` header (logout tokens: `logout+jwt`), checked when given. */
  typ?: string;
  /** Clock in milliseconds (default `Date.now`). */
  now?: () => number;
}

/**
 * Verifies a JWT issued by a provider: algorithm allow-list, signature against the
 * provider's JWKS (or the client secret for an opted-in HS256), `iss`, `aud`, expiry.
 * @returns the verified payload and protected header.
 * @throws JwtCheckError
 */
export async function verifyProviderJwt(token: string, want: ProviderJwtExpectations): Promise<{ payload: jose.JWTPayload; header: jose.JWTHeaderParameters }> {
  let header: jose.ProtectedHeaderParameters;
  try {
    header = jose.decodeProtectedHeader(token);
  } catch (err) {
    throw new JwtCheckError('bad_claims', 'the token is not a JWS', { cause: err });
  }
  const allowed = (want.algorithms ?? ASYMMETRIC_ALGORITHMS).filter((a) => a !== 'none');
  const alg = typeof header.alg === 'string' ? header.alg : '';
  const symmetric = alg === SYMMETRIC_ALGORITHM && allowed.includes(SYMMETRIC_ALGORITHM) && !!want.clientSecret;
  const asymmetric = (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg) && allowed.includes(alg);
  if (!symmetric && !asymmetric) throw new JwtCheckError('alg_not_allowed', `the token is signed with ${JSON.stringify(alg)}, which is not allowed for this provider`);
  const options: jose.JWTVerifyOptions = {
    algorithms: [alg],
    issuer: want.issuer,
    audience: want.audience,
    clockTolerance: want.clockToleranceSeconds ?? 60,
    ...(want.requiredClaims ? { requiredClaims: want.requiredClaims } : {}),
    ...(want.typ ? { typ: want.typ } : {}),
    ...(want.now ? { currentDate: new Date(want.now()) } : {}),
  };
  try {
    const result = symmetric
      ? await jose.jwtVerify(token, new TextEncoder().encode(want.clientSecret), options)
      : await jose.jwtVerify(token, (h, t) => want.keys.keyFor(h, t), options);
    return { payload: result.payload, header: result.protectedHeader };
  } catch (err) {
    throw toCheckError(err);
  }
}

function toCheckError(err: unknown): JwtCheckError {
  if (err instanceof JwtCheckError) return err;
  if (err instanceof jose.errors.JWKSNoMatchingKey || err instanceof jose.errors.JWKSMultipleMatchingKeys) {
    return new JwtCheckError('no_matching_key', "no key of the provider's JWKS matches the token's kid and algorithm", { cause: err });
  }
  if (err instanceof jose.errors.JWSSignatureVerificationFailed) return new JwtCheckError('bad_signature', 'the token signature does not verify', { cause: err });
  if (err instanceof jose.errors.JOSEAlgNotAllowed) return new JwtCheckError('alg_not_allowed', err.message, { cause: err });
  if (err instanceof jose.errors.JWTClaimValidationFailed || err instanceof jose.errors.JWTExpired) {
    return new JwtCheckError('bad_claims', `claim ${err.claim} ${err.reason === 'check_failed' ? 'failed its check' : err.reason}`, { cause: err });
  }
  return new JwtCheckError('bad_claims', err instanceof Error ? err.message : String(err), { cause: err });
}
