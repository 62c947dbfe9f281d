/**
 * Sealed values: small JSON payloads encrypted and authenticated for a browser
 * cookie (login transactions, session references).
 *
 * Rules:
 * - AES-256-GCM; one key per secret, derived with HKDF-SHA256 and the sealer's
 *   purpose as `info`, so a value sealed for one purpose never opens for another.
 * - A 4-byte key id (derived from the key, not the key itself) picks the key to open
 *   with: values sealed before a rotation still open with a previous secret; new
 *   values always use the current one.
 * - The expiry travels inside the ciphertext; an expired value does not open.
 * - Version and key id are authenticated data: changing any byte fails.
 * - `unseal` never throws: anything it cannot open is `undefined`.
 *
 * Layout (base64url): version (1) | key id (4) | iv (12) | ciphertext | tag (16).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 1;
const HEADER = 1 + 4;
const IV = 12;
const TAG = 16;
/** Longest value `unseal` looks at; cookies are limited to about 4 KiB anyway. */
const MAX_SEALED_CHARS = 8192;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const SALT = 'tenant-gate/seal/v1';

/** Options of a {@link Sealer}. */
export interface SealerOptions {
  /**
   * What the values are for, e.g. `login-transaction` or `session`. Sealers with
   * different purposes cannot open each other's values even with the same secret.
   */
  purpose?: string;
}

interface Key {
  id: Buffer;
  key: Buffer;
}

function deriveKey(secret: string, purpose: string): Key {
  const key = Buffer.from(hkdfSync('sha256', secret, SALT, `key:${purpose}`, 32));
  const id = Buffer.from(hkdfSync('sha256', key, SALT, 'key-id', 4));
  return { id, key };
}

/** Seals and opens short-lived values with the session secret and its predecessors. */
export class Sealer {
  readonly #current: Key;
  readonly #keys: Key[];

  /**
   * @param secret current secret (at least 32 characters); every new value is sealed with it.
   * @param previousSecrets earlier secrets, still accepted when opening.
   * @param options `purpose` separates the keys of different uses (default `default`).
   */
  constructor(secret: string, previousSecrets: string[] = [], options: SealerOptions = {}) {
    for (const s of [secret, ...previousSecrets]) {
      if (typeof s !== 'string' || s.length < 32) throw new TypeError('seal secrets must be at least 32 characters');
    }
    const purpose = options.purpose ?? 'default';
    this.#current = deriveKey(secret, purpose);
    this.#keys = [this.#current, ...previousSecrets.map((s) => deriveKey(s, purpose))];
  }

  /**
   * Encrypts `payload` (anything `JSON.stringify` accepts) so it opens until
   * `now + ttlSeconds`.
   * @param now milliseconds since the epoch (default `Date.now()`).
   * @returns a base64url string.
   */
  seal(payload: unknown, ttlSeconds: number, now: number = Date.now()): string {
    if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new RangeError('ttlSeconds must be a positive number');
    const header = Buffer.alloc(HEADER);
    header.writeUInt8(VERSION, 0);
    this.#current.id.copy(header, 1);
    const iv = randomBytes(IV);
    const cipher = createCipheriv('aes-256-gcm', this.#current.key, iv);
    cipher.setAAD(header);
    const plain = Buffer.from(JSON.stringify({ e: Math.floor(now + ttlSeconds * 1000), p: payload }), 'utf8');
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([header, iv, body, cipher.getAuthTag()]).toString('base64url');
  }

  /**
   * Opens a value made by {@link Sealer.seal} with the current or a previous secret.
   * @param now milliseconds since the epoch (default `Date.now()`).
   * @returns the payload, or `undefined` when the value is expired, altered,
   *   truncated, sealed with an unknown key or for another purpose, or not a sealed value.
   */
  unseal<T>(value: string, now: number = Date.now()): T | undefined {
    try {
      if (typeof value !== 'string' || value.length > MAX_SEALED_CHARS || !BASE64URL.test(value)) return undefined;
      const raw = Buffer.from(value, 'base64url');
      if (raw.length < HEADER + IV + TAG + 1 || raw.readUInt8(0) !== VERSION) return undefined;
      const header = raw.subarray(0, HEADER);
      const id = header.subarray(1);
      const key = this.#keys.find((k) => k.id.equals(id));
      if (!key) return undefined;
      const decipher = createDecipheriv('aes-256-gcm', key.key, raw.subarray(HEADER, HEADER + IV));
      decipher.setAAD(header);
      decipher.setAuthTag(raw.subarray(raw.length - TAG));
      const plain = Buffer.concat([decipher.update(raw.subarray(HEADER + IV, raw.length - TAG)), decipher.final()]);
      const opened: unknown = JSON.parse(plain.toString('utf8'));
      if (typeof opened !== 'object' || opened === null) return undefined;
      const { e, p } = opened as { e?: unknown; p?: unknown };
      if (typeof e !== 'number' || !(now < e)) return undefined;
      return p as T;
    } catch {
      return undefined;
    }
  }
}
