/**
 * The only way the gateway sends a request to an identity provider.
 *
 * Rules:
 * - Every URL passes {@link checkProviderUrl} first (https, no credentials; http and
 *   non-public IP literals only with `insecureAllowPrivate`).
 * - Host names are resolved at connect time and every address must be public (no
 *   loopback, private, link-local, ...) unless `insecureAllowPrivate`: the check sits
 *   in the connection's own lookup, so a name that changes its answer between a check
 *   and the connection (DNS rebinding) is still caught. Redirects are never followed
 *   by the callers (openid-client asks for `manual`, the JWKS fetch for `error`).
 * - Every request gives up after `timeoutMs`, whatever signal the caller passed.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent, fetch as undiciFetch } from 'undici';
import { checkProviderUrl, isPublicAddress } from '../tenancy/provider-url.js';
import type { CustomFetch } from 'openid-client';

/** Options of {@link createProviderFetch}. */
export interface ProviderFetchOptions {
  timeoutMs: number;
  insecureAllowPrivate: boolean;
  /** A fetch to use instead of the guarded one (tests); URL checks still apply. */
  fetch?: typeof fetch;
}

/** Thrown for a provider URL or address the policy refuses; `message` names it. */
class ProviderAddressError extends Error {
  readonly code = 'EPROVIDERADDRESS';
}

type Lookup = (hostname: string, options: object, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => void;

function guardedLookup(insecure: boolean): Lookup {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const refused = insecure ? undefined : addresses.find((a) => !isPublicAddress(a.address));
      if (refused) {
        return callback(new ProviderAddressError(`${hostname} resolves to ${refused.address}, which is not a public address (oidc.insecureAllowPrivateProviders allows it)`), []);
      }
      if ((options as { all?: boolean }).all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}

/** A fetch for identity provider requests: checked URLs, checked addresses, a timeout. */
export function createProviderFetch(opts: ProviderFetchOptions): { fetch: typeof fetch; close(): Promise<void> } {
  const policy = { insecureAllowPrivate: opts.insecureAllowPrivate };
  const agent = opts.fetch ? undefined : new Agent({ connect: { lookup: guardedLookup(opts.insecureAllowPrivate) } });
  const base: typeof fetch =
    opts.fetch ?? (((input: Parameters<typeof fetch>[0], init?: RequestInit) => undiciFetch(input as never, { ...init, dispatcher: agent } as never)) as unknown as typeof fetch);
  const guarded = ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    const problem = checkProviderUrl(url, policy);
    if (problem) return Promise.reject(new ProviderAddressError(`${url} ${problem}`));
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    return base(input, { ...init, signal });
  }) as typeof fetch;
  return { fetch: guarded, close: async () => agent?.close() };
}

/**
 * A `fetch` as openid-client calls it. Every body openid-client sends is a `fetch` body;
 * TypeScript's lib disagrees only on the buffer type of `Uint8Array`.
 */
export function oidcFetch(f: typeof fetch): CustomFetch {
  return (url, options) => f(url, options as RequestInit);
}
