/**
 * Logout tokens for tests: signed with a test provider's own key (as the provider
 * would), or with anything else (as a forger would).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { importJWK, SignJWT, type JWTPayload } from 'jose';
import type { Idp } from './idp.js';

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A valid logout token's claims for `idp` and `clientId`; `overrides` replace (undefined deletes). */
export function logoutClaims(idp: Idp, clientId: string, overrides: Record<string, unknown> = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: idp.issuer,
    aud: clientId,
    iat: now,
    exp: now + 120,
    jti: randomBytes(12).toString('base64url'),
    events: { [LOGOUT_EVENT]: {} },
    ...overrides,
  };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return claims;
}

/** Signs claims with the provider's key (RS256, its kid). */
export async function signAsIdp(idp: Idp, claims: JWTPayload): Promise<string> {
  const key = await importJWK(idp.signingJwk as never, 'RS256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: String(idp.signingJwk['kid']), typ: 'logout+jwt' }).sign(key);
}

/** Signs claims with a fresh key that claims the provider's kid. */
export async function signForged(idp: Idp, claims: JWTPayload): Promise<string> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: String(idp.signingJwk['kid']) }).sign(privateKey);
}

/** Signs claims with HS256 and a shared secret (e.g. the client secret). */
export async function signHmac(secret: string, claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
}

/** An unsigned token (`alg: none`). */
export function unsigned(claims: JWTPayload): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none' })}.${part(claims)}.`;
}
