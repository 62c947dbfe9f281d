/**
 * The key the gateway signs `private_key_jwt` client assertions with.
 *
 * Rules: a PKCS#8 PEM file, RSA (RS256, at least 2048 bits) or EC P-256 (ES256); its
 * `kid` is the RFC 7638 thumbprint of the public key; only the public JWK ever leaves
 * this module (to be registered at the provider).
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import type { ClientAssertionKey } from './client-registry.js';

/** A loaded client assertion key and its public half, as a JWK to register. */
export interface LoadedClientAssertionKey extends ClientAssertionKey {
  publicJwk: jose.JWK;
}

/**
 * Reads the key file named by `oidc.clientAssertionKeyFile`.
 * @throws Error naming the file and what is wrong with it.
 */
export async function loadClientAssertionKey(file: string): Promise<LoadedClientAssertionKey> {
  const pem = readFileSync(file, 'utf8');
  let alg: 'RS256' | 'ES256';
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) alg = 'RS256';
  else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') alg = 'ES256';
  else throw new Error(`${file}: the client assertion key must be RSA (2048 bits or more) or EC P-256`);
  const pkcs8 = key.export({ format: 'pem', type: 'pkcs8' }).toString();
  const privateKey = await jose.importPKCS8(pkcs8, alg);
  const publicJwk = await jose.exportJWK(createPublicKey(key));
  const kid = await jose.calculateJwkThumbprint(publicJwk);
  return { key: privateKey, kid, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } };
}
