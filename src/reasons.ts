/**
 * Every reason the gateway gives for refusing or ending something, in one registry.
 *
 * Rules:
 * - each table is `as const`; the types are read off the tables, so a reason that is
 *   not listed here does not compile;
 * - metric `reason` labels take these values only (pre-registered at start, so a
 *   scrape shows every series from the first request on);
 * - docs/reasons.md lists the same values; test/reasons.test.ts keeps the two equal;
 * - never rename a value: operators alert on them.
 */

/** Why a `/callback_<client_id>` request's path or query is malformed (src/tenancy/callback.ts). */
export const CALLBACK_SHAPE_REFUSALS = [
  'bad_path',
  'control_char',
  'backslash',
  'encoded_separator',
  'double_slash',
  'dot_segment',
  'empty_client_id',
  'bad_client_id',
  'too_long',
  'bad_encoding',
  'bad_value',
  'unknown_param',
  'too_many_params',
  'unexpected_param',
  'duplicate_param',
  'empty_param',
  'missing_state',
  'missing_code',
  'both_code_and_error',
] as const;

/** A malformed-callback reason. */
export type CallbackShapeRefusal = (typeof CALLBACK_SHAPE_REFUSALS)[number];

/** Why a `/callback_<client_id>` request was refused before anything else ran (400 page). */
export const CALLBACK_REFUSALS = [...CALLBACK_SHAPE_REFUSALS, 'unknown_client', 'wrong_tenant', 'bad_form_post', 'bad_method'] as const;

/** A callback refusal reason. */
export type CallbackRefusalReason = (typeof CALLBACK_REFUSALS)[number];

/** OAuth and OpenID Connect error codes a provider may send back; any other value counts as `other`. */
const PROVIDER_ERRORS = [
  'access_denied',
  'invalid_request',
  'unauthorized_client',
  'unsupported_response_type',
  'invalid_scope',
  'server_error',
  'temporarily_unavailable',
  'interaction_required',
  'login_required',
  'account_selection_required',
  'consent_required',
  'invalid_request_uri',
  'invalid_request_object',
  'request_not_supported',
  'request_uri_not_supported',
  'registration_not_supported',
  'other',
] as const;

/** A provider error code as counted. */
export type ProviderErrorCode = (typeof PROVIDER_ERRORS)[number];

/** Outcomes of the login decision in authenticate mode, by reason (`ok` for a success). */
export const LOGIN_REASONS = [
  'ok',
  'no_transaction',
  'transaction_mismatch',
  'state_mismatch',
  'replayed',
  'unknown_tenant',
  'provider_unavailable',
  'provider_misconfigured',
  'provider_error',
  'invalid_grant',
  'bad_callback',
  'bad_token',
  'nonce_mismatch',
  'tenant_claim_missing',
  'tenant_mismatch',
  'groups_claim_missing',
  'no_group',
  'subject_missing',
  ...PROVIDER_ERRORS.map((code) => `provider_error:${code}` as const),
] as const;

/** A login decision reason. */
export type LoginReason = (typeof LOGIN_REASONS)[number];

/** The outcome of a login decision. */
export type LoginOutcome = 'success' | 'refused' | 'error';

/** Why a request was answered by the gateway instead of being passed on (logged, traced). */
export const PAGE_REASONS = [
  'bad_host',
  'unknown_host',
  'store_unavailable',
  'unknown_tenant',
  'rate_limited',
  'gateway_path_under_api',
  'unsafe_redirect_param',
  'needs_login',
] as const;

/** A reason for a gateway-answered request. */
export type PageReason = (typeof PAGE_REASONS)[number];

/** Whether `value` is one of the provider error codes kept as a label. */
export function providerErrorCode(value: string): ProviderErrorCode {
  return (PROVIDER_ERRORS as readonly string[]).includes(value) ? (value as ProviderErrorCode) : 'other';
}

/** Why a logout token was refused (src/oidc/backchannel-logout.ts). */
const LOGOUT_TOKEN_REFUSALS = [
  'malformed',
  'bad_algorithm',
  'bad_signature',
  'wrong_issuer',
  'wrong_audience',
  'stale',
  'expired',
  'missing_event',
  'nonce_present',
  'no_subject',
  'missing_jti',
  'replayed',
  'keys_unavailable',
] as const;

/** A logout token refusal. */
export type LogoutTokenReason = (typeof LOGOUT_TOKEN_REFUSALS)[number];

/** Outcomes of back- and front-channel logout requests (metric `outcome`, log `outcome`; src/oidc/logout-channels.ts). */
export const CHANNEL_LOGOUT_OUTCOMES = [
  'ok',
  'rate_limited',
  'unknown_client',
  'wrong_tenant',
  'not_enabled',
  'provider_unavailable',
  'no_sid',
  ...LOGOUT_TOKEN_REFUSALS,
] as const;

/** A back- or front-channel logout outcome. */
export type ChannelLogoutOutcome = (typeof CHANNEL_LOGOUT_OUTCOMES)[number];
