/**
 * Verification of OpenID Connect Back-Channel Logout 1.0 logout tokens (pure: keys,
 * issuer, client and time come from the caller).
 *
 * Rules (section 2.6 of the specification):
 * - the token is a signed JWT whose algorithm is asymmetric (RS*, PS*, ES*, EdDSA):
 *   never `none`, never HS* (a client secret is no proof of the provider);
 * - the signature verifies with one of the provider's keys;
 * - `iss` equals the provider's issuer exactly, `aud` is or contains the client_id;
 * - `iat` is present and neither in the future nor older than `maxAgeSeconds`
 *   (each with `clockToleranceSeconds`); `exp`, when present, is not past;
 * - `events` is an object with the member `http://schemas.openid.net/event/backchannel-logout`
 *   (itself an object); `nonce` is absent (so an ID token is never a logout token);
 * - `sid` and/or `sub` are present as non-empty strings; `jti` is a non-empty string
 *   (the caller refuses a `jti` seen before).
 * Every refusal is a {@link LogoutTokenError} with a stable `reason`; the token itself
 * never appears in an error.
 */
import { errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { ErrorCodes, GatewayError } from '../errors.js';
import type { LogoutTokenReason } from '../reasons.js';

/** The event a logout token carries. */
const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Signature algorithms accepted for logout tokens. */
const LOGOUT_TOKEN_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
] as const;

/** Longest logout token read (characters). */
const MAX_LOGOUT_TOKEN_LENGTH = 16_384;

export type { LogoutTokenReason };

const DESCRIPTIONS: Record<LogoutTokenReason, string> = {
  malformed: 'the logout token is not a well-formed signed JWT',
  bad_algorithm: 'the logout token is not signed with an accepted asymmetric algorithm',
  bad_signature: "the logout token's signature does not verify with the provider's keys",
  wrong_issuer: 'the logout token was not issued by this client\'s provider',
  wrong_audience: 'the logout token is not addressed to this client',
  stale: 'the logout token is too old or issued in the future',
  expired: 'the logout token has expired',
  missing_event: 'the logout token carries no back-channel logout event',
  nonce_present: 'a logout token must not carry a nonce',
  no_subject: 'the logout token names neither sid nor sub',
  missing_jti: 'the logout token has no jti',
  replayed: 'the logout token was already used',
  keys_unavailable: "the provider's keys cannot be fetched",
};

/** A refused logout token: 400, or 503 when the provider's keys could not be fetched. */
export class LogoutTokenError extends GatewayError {
  readonly reason: LogoutTokenReason;
  constructor(reason: LogoutTokenReason, detail?: string) {
    super(ErrorCodes.BAD_LOGOUT_TOKEN, reason === 'keys_unavailable' ? 503 : 400, DESCRIPTIONS[reason], detail === undefined ? undefined : { detail });
    this.reason = reason;
  }
}

/** What a valid logout token says. */
export interface LogoutTokenClaims {
  iss: string;
  sub?: string;
  sid?: string;
  jti: string;
  /** Seconds since the epoch. */
  iat: number;
  exp?: number;
}

/** Options of {@link verifyLogoutToken}. */
export interface VerifyLogoutTokenOptions {
  /** The provider's issuer, exactly. */
  issuer: string;
  clientId: string;
  /** The provider's keys (jose key getter). */
  keys: JWTVerifyGetKey;
  /** Current time in milliseconds since the epoch. */
  now: number;
  /** Oldest `iat` accepted, in seconds before now (default 300). */
  maxAgeSeconds?: number;
  /** Clock skew allowed, in seconds (default 60). */
  clockToleranceSeconds?: number;
}

function nonEmpty(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fromJose(err: unknown): LogoutTokenError {
  if (err instanceof LogoutTokenError) return err;
  const detail = err instanceof Error ? err.message.slice(0, 200) : undefined;
  if (err instanceof joseErrors.JWTExpired) return new LogoutTokenError('expired', detail);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'iss':
        return new LogoutTokenError('wrong_issuer', detail);
      case 'aud':
        return new LogoutTokenError('wrong_audience', detail);
      case 'iat':
      case 'nbf':
        return new LogoutTokenError('stale', detail);
      case 'jti':
        return new LogoutTokenError('missing_jti', detail);
      default:
        return new LogoutTokenError('malformed', detail);
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) return new LogoutTokenError('bad_algorithm', detail);
  if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return new LogoutTokenError('bad_signature', detail);
  }
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return new LogoutTokenError('malformed', detail);
  // Fetching the JWKS failed (timeout, HTTP error, not a JWKS, network) or the key getter threw.
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || !(err instanceof joseErrors.JOSEError) || err.code === 'ERR_JOSE_GENERIC') {
    return new LogoutTokenError('keys_unavailable', detail);
  }
  return new LogoutTokenError('malformed', detail);
}

/**
 * Verifies a logout token.
 * @returns its claims.
 * @throws LogoutTokenError
 */
export async function verifyLogoutToken(token: unknown, opts: VerifyLogoutTokenOptions): Promise<LogoutTokenClaims> {
  if (!nonEmpty(token) || token.length > MAX_LOGOUT_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw new LogoutTokenError('malformed');
  }
  const maxAge = opts.maxAgeSeconds ?? 300;
  const tolerance = opts.clockToleranceSeconds ?? 60;
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, opts.keys, {
      algorithms: [...LOGOUT_TOKEN_ALGORITHMS],
      issuer: opts.issuer,
      audience: opts.clientId,
      currentDate: new Date(opts.now),
      clockTolerance: tolerance,
      maxTokenAge: maxAge,
      requiredClaims: ['iat'],
    }));
  } catch (err) {
    throw fromJose(err);
  }
  const iat = payload.iat as number;
  if (iat > opts.now / 1000 + tolerance) throw new LogoutTokenError('stale', 'iat is in the future');
  const events = payload['events'];
  if (!isObject(events) || !isObject(events[BACKCHANNEL_LOGOUT_EVENT])) throw new LogoutTokenError('missing_event');
  if ('nonce' in payload) throw new LogoutTokenError('nonce_present');
  const sub = payload.sub;
  const sid = payload['sid'];
  if ((sub !== undefined && !nonEmpty(sub)) || (sid !== undefined && !nonEmpty(sid)) || (sub === undefined && sid === undefined)) {
    throw new LogoutTokenError('no_subject');
  }
  if (!nonEmpty(payload.jti)) throw new LogoutTokenError('missing_jti');
  return {
    iss: payload.iss as string,
    jti: payload.jti,
    iat,
    ...(nonEmpty(sub) ? { sub } : {}),
    ...(nonEmpty(sid) ? { sid } : {}),
    ...(typeof payload.exp === 'number' ? { exp: payload.exp } : {}),
  };
}

