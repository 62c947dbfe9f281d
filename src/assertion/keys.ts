/**
 * The gateway's assertion signing keys: made once, kept in the directory store, shared
 * by every replica.
 *
 * Rules:
 * - the first replica to start with an empty store generates an ES256 key pair; the
 *   store's `ensureSigningKey` makes replicas starting together agree on one key;
 * - the key id is the public key's RFC 7638 thumbprint;
 * - a rotation makes a new key current; the previous key stays published for
 *   `graceMs` (tokens it signed keep verifying), older retired keys are dropped;
 * - each replica re-reads the keys at most every `refreshMs`, in the background, so a
 *   rotation made elsewhere (the CLI, another replica) reaches it within that time; a
 *   store that cannot be read keeps the keys already loaded;
 * - private keys never leave this module except as the signing key object.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { SigningKey, TenantStore } from '../directory/types.js';

/** The JWS algorithm of the assertions. */
export const ASSERTION_ALG = 'ES256';

/** A fresh key pair, ready to store. */
async function newSigningKey(now: number): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(ASSERTION_ALG, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, alg: ASSERTION_ALG, privateJwk: { ...privateJwk }, publicJwk: { ...publicJwk }, createdAt: now };
}

/**
 * Rotates the signing key: a new current key; the previous one published for `graceMs`.
 * @returns the new key id.
 */
export async function rotateSigningKey(store: TenantStore, graceMs: number, now = Date.now()): Promise<string> {
  const key = await newSigningKey(now);
  await store.rotateSigningKey(key, now - graceMs);
  return key.kid;
}

/** Options of {@link KeyRing}. */
export interface KeyRingOptions {
  store: TenantStore;
  /** How long a retired key stays published. */
  graceMs: number;
  /** Re-read the keys from the store at most this often. */
  refreshMs: number;
  now?: () => number;
  /** Told when a refresh fails (the loaded keys stay in use). */
  onError?: (err: unknown) => void;
}

/** The key a replica signs with. */
export interface CurrentKey {
  kid: string;
  key: CryptoKey;
}

/** The keys of this replica: the current signing key and the published set. */
export class KeyRing {
  readonly #o: KeyRingOptions;
  readonly #now: () => number;
  #current: CurrentKey | undefined;
  #jwks = '{"keys":[]}';
  #loadedAt = 0;
  #refreshing: Promise<void> | undefined;

  constructor(opts: KeyRingOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Makes sure a key exists (generating one on first start) and loads the keys. */
  async init(): Promise<void> {
    const keys = await this.#o.store.listSigningKeys();
    if (!keys.some((k) => k.retiredAt === undefined)) await this.#o.store.ensureSigningKey(await newSigningKey(this.#now()));
    await this.reload();
  }

  /** Reads the keys from the store now. */
  async reload(): Promise<void> {
    const keys = await this.#o.store.listSigningKeys();
    const current = keys.find((k) => k.retiredAt === undefined);
    if (!current) throw new Error('the directory holds no current signing key');
    if (current.kid !== this.#current?.kid) {
      this.#current = { kid: current.kid, key: (await importJWK(current.privateJwk as JWK, current.alg)) as CryptoKey };
    }
    const now = this.#now();
    const published = keys.filter((k) => k.retiredAt === undefined || now - k.retiredAt < this.#o.graceMs);
    this.#jwks = JSON.stringify({ keys: published.map((k) => ({ ...publicOnly(k.publicJwk), kid: k.kid, alg: k.alg, use: 'sig' })) });
    this.#loadedAt = now;
  }

  /** The signing key; starts a background refresh when the loaded copy is older than `refreshMs`. */
  current(): CurrentKey {
    if (!this.#current) throw new Error('the key ring is not initialised');
    this.#maybeRefresh();
    return this.#current;
  }

  /** The JWK Set to publish, as JSON text. */
  jwks(): string {
    this.#maybeRefresh();
    return this.#jwks;
  }

  /** Resolves once a refresh in progress (if any) is over. */
  settled(): Promise<void> {
    return this.#refreshing ?? Promise.resolve();
  }

  #maybeRefresh(): void {
    if (this.#refreshing || this.#now() - this.#loadedAt < this.#o.refreshMs) return;
    this.#refreshing = this.reload()
      .catch((err: unknown) => {
        this.#loadedAt = this.#now();
        this.#o.onError?.(err);
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
  }
}

/** The public members of an EC or OKP JWK: never `d` or other private parts. */
function publicOnly(jwk: Record<string, unknown>): Record<string, unknown> {
  const { kty, crv, x, y, n, e } = jwk;
  return Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined));
}
