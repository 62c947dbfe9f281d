/**
 * Identity provider URLs the gateway will talk to.
 *
 * Rules: https anywhere; http only on a loopback host (127.0.0.0/8, ::1, localhost);
 * no other scheme; no credentials; no fragment.
 */
import { isLoopbackHost } from './host.js';

/**
 * Checks an identity provider URL.
 * @returns the reason it is refused, or undefined when it is fine.
 */
export function checkProviderUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.username || url.password) return 'must not contain credentials';
  if (url.hash) return 'must not contain a fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname.toLowerCase().replace(/\.$/, ''))) return undefined;
  if (url.protocol === 'http:') return 'uses http on a host that is not loopback (https is required)';
  return `uses the unsupported scheme ${url.protocol}`;
}
