/**
 * What a user and the audit log are told when a login step fails at the provider.
 *
 * Rules:
 * - 502 for a configuration an operator must fix (provider refused the client, no
 *   issuer, endpoint refused by policy): the page says the organisation's sign-in is
 *   misconfigured, never "try again", and sends no Retry-After;
 * - 503 for a provider that is down or slow: "try again in a moment";
 * - 400 for a callback that cannot be verified: "start again";
 * - the provider's OAuth error code (e.g. `invalid_client`) goes to the audit log,
 *   never its description to the user.
 */
import { ErrorCodes, GatewayError } from '../errors.js';
import type { LoginReason } from '../reasons.js';
import { FlowError } from './flow.js';

/** A failed login step, ready for a page and an audit line. */
export interface ProviderFailure {
  status: 400 | 502 | 503;
  reason: LoginReason;
  message: string;
  detail?: string;
  providerError?: string;
}

const MESSAGES = {
  400: 'The sign-in response could not be verified. Please start again.',
  502: "This organisation's sign-in is misconfigured. Please contact your administrator; trying again will not help.",
  503: "The organisation's identity provider cannot be reached. Please try again in a moment.",
} as const;

/** Classifies an error thrown by the client registry or the login flow. */
export function providerFailure(err: unknown): ProviderFailure {
  const fe = err instanceof FlowError ? err : undefined;
  const raw = fe ? fe.statusCode : err instanceof GatewayError ? err.statusCode : 503;
  const misconfigured = raw === 502 || (err instanceof GatewayError && err.code === ErrorCodes.PROVIDER_MISCONFIGURED);
  const status = misconfigured ? 502 : raw >= 500 ? 503 : 400;
  const detail = err instanceof GatewayError ? (err.detail ?? err.message) : err instanceof Error ? err.message : undefined;
  return {
    status,
    reason: fe?.reason ?? (misconfigured ? 'provider_misconfigured' : 'provider_unavailable'),
    message: MESSAGES[status],
    ...(detail !== undefined ? { detail } : {}),
    ...(fe?.oauthError ? { providerError: fe.oauthError } : {}),
  };
}
