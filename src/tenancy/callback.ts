/**
 * Shape checks for `/callback_<client_id>` requests, before anything is looked up or
 * proxied. Every refusal carries a stable reason code, used as a metric label.
 *
 * Rules for the path (the raw request path, before any decoding):
 * - Printable ASCII only; no backslash; no encoded `/` or `\` (`%2f`, `%5c`), which a
 *   proxy or the webapp might decode into a separator the gateway never saw.
 * - Exactly `/callback_` followed by one segment: no `//`, no `.`/`..` segment
 *   (also as `%2e`), no further `/`.
 * - The client ID, percent-decoded once, is 1 to 255 characters of
 *   `A-Z a-z 0-9 . _ ~ : @ ! $ & ' ( ) * + , ; = -`; a second layer of encoding
 *   (`%252f`) therefore fails, as `%` is not in the set.
 *
 * Rules for the query string (or an `application/x-www-form-urlencoded` form_post body):
 * - At most 8192 characters; `key=value` pairs joined by `&`, no empty pair, no key
 *   without `=`; keys compared as sent (an encoded key is an unknown key).
 * - Keys checked strictly, each at most once: `state` and `code`, or `state` and
 *   `error` with optional `error_description` and `error_uri`; `iss` (RFC 9207, sent by
 *   Keycloak and oidc-provider) and `session_state` (OIDC session management, sent by
 *   Keycloak) with either.
 * - Other keys are what providers add (Google: `scope`, `authuser`, `hd`, `prompt`)
 *   and are ignored by the login (route mode passes them on to the webapp as sent),
 *   within bounds: at most 16, a plain name of at most 64 of `A-Z a-z 0-9 _ . -`
 *   starting with a letter (sent unencoded), a value of at most 1024 characters,
 *   form-decodable, without control characters. A key that differs from a checked
 *   one only in case (`Code`), or that carries meaning to a relying party or a
 *   webapp (`redirect`, `redirect_uri`, tokens, `nonce`, `client_id`, prototype
 *   names) is refused: an extra parameter must not smuggle data in.
 * - Values are form-decoded (`+` is a space); malformed escapes or invalid UTF-8 are
 *   refused; no control characters; `code`, `state`, `iss`, `session_state` are
 *   printable ASCII, `error` and `error_description` printable ASCII without `"` and
 *   `\` (RFC 6749), `error_uri` the same without space.
 * - Lengths: `code`, `state`, `iss`, `error_uri` at most 2048; `error` 256;
 *   `error_description` 1024; `session_state` 512.
 */

import { CALLBACK_SHAPE_REFUSALS, type CallbackShapeRefusal } from '../reasons.js';
import { hasControlChar, percentDecode } from './percent.js';

/** Stable reason codes for malformed callbacks (metric label values), from the registry. */
export type CallbackRefusal = CallbackShapeRefusal;

/** Every {@link CallbackRefusal}, e.g. to pre-register metric label values. */
export const CALLBACK_REFUSALS: readonly CallbackRefusal[] = CALLBACK_SHAPE_REFUSALS;

/** The parameters of a well-formed callback, decoded. */
export interface CallbackParams {
  code?: string;
  state: string;
  error?: string;
  error_description?: string;
  error_uri?: string;
  iss?: string;
  session_state?: string;
  /** Parameters providers add that the login ignores (decoded), e.g. Google's `hd`. */
  extra?: Record<string, string>;
}

/** Result of {@link validateCallbackQuery}. */
export type CallbackQueryResult =
  | { ok: true; params: CallbackParams }
  | { ok: false; reason: CallbackRefusal };

const CALLBACK_PREFIX = '/callback_';
const MAX_CLIENT_ID_LENGTH = 255;
const MAX_RAW_PATH_LENGTH = CALLBACK_PREFIX.length + MAX_CLIENT_ID_LENGTH * 3;
const MAX_QUERY_LENGTH = 8192;
const CLIENT_ID = /^[A-Za-z0-9._~:@!$&'()*+,;=-]+$/;
const PRINTABLE = /^[\x20-\x7e]*$/;
const NO_QUOTE_OR_BACKSLASH = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const NO_SPACE_QUOTE_OR_BACKSLASH = /^[\x21\x23-\x5b\x5d-\x7e]*$/;

type ParamName = Exclude<keyof CallbackParams, 'extra'>;

const MAX_EXTRA_PARAMS = 16;
const MAX_EXTRA_VALUE = 1024;
const EXTRA_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** Names an extra parameter may not have: they mean something to a relying party or a webapp. */
const RESERVED_NAMES = new Set([
  'redirect', 'redirect_uri', 'redirect_url', 'post_logout_redirect_uri', 'rd', 'next', 'return_to', 'returnto', 'return_url',
  'id_token', 'access_token', 'refresh_token', 'token', 'token_type', 'expires_in', 'nonce', 'client_id', 'client_secret',
  'code_verifier', 'response', 'response_type', 'response_mode', 'request', 'request_uri', 'login_hint', 'id_token_hint',
  'logout_token', 'jwt', 'assertion', 'provider', '__proto__', 'constructor', 'prototype', 'hasownproperty', 'tostring', 'valueof',
]);

const PARAM_RULES: Record<ParamName, { max: number; chars: RegExp }> = {
  code: { max: 2048, chars: PRINTABLE },
  state: { max: 2048, chars: PRINTABLE },
  error: { max: 256, chars: NO_QUOTE_OR_BACKSLASH },
  error_description: { max: 1024, chars: NO_QUOTE_OR_BACKSLASH },
  error_uri: { max: 2048, chars: NO_SPACE_QUOTE_OR_BACKSLASH },
  iss: { max: 2048, chars: PRINTABLE },
  session_state: { max: 512, chars: PRINTABLE },
};

function isParamName(key: string): key is ParamName {
  return Object.prototype.hasOwnProperty.call(PARAM_RULES, key);
}

/**
 * Splits a raw request target (`req.url`) into its path and query without decoding
 * either. The fragment, which browsers never send, is not expected.
 *
 * @returns `query` is `undefined` when there is no `?`
 */
export function splitRawUrl(rawUrl: string): { path: string; query: string | undefined } {
  const q = rawUrl.indexOf('?');
  return q < 0 ? { path: rawUrl, query: undefined } : { path: rawUrl.slice(0, q), query: rawUrl.slice(q + 1) };
}

/**
 * Extracts the client ID from a raw callback path such as `/callback_my-client`.
 *
 * @param rawPath the path of the request target before any decoding, without query
 * @returns the client ID (percent-decoded once), or the reason it was refused
 */
export function parseCallbackPath(rawPath: string): { clientId: string } | { error: CallbackRefusal } {
  if (typeof rawPath !== 'string') return { error: 'bad_path' };
  if (rawPath.length > MAX_RAW_PATH_LENGTH) return { error: 'too_long' };
  if (hasControlChar(rawPath)) return { error: 'control_char' };
  if (!/^[\x21-\x7e]*$/.test(rawPath)) return { error: 'bad_path' };
  if (rawPath.includes('\\')) return { error: 'backslash' };
  if (/%(?:2f|5c)/i.test(rawPath)) return { error: 'encoded_separator' };
  if (rawPath.includes('//')) return { error: 'double_slash' };
  const segments = rawPath.split('/');
  const dotted = segments.some((seg) => {
    const plain = seg.replace(/%2e/gi, '.');
    return plain === '.' || plain === '..';
  });
  if (dotted) return { error: 'dot_segment' };
  if (!rawPath.startsWith(CALLBACK_PREFIX) || segments.length !== 2) return { error: 'bad_path' };

  const encoded = rawPath.slice(CALLBACK_PREFIX.length);
  if (encoded.length === 0) return { error: 'empty_client_id' };
  const clientId = percentDecode(encoded, 'strict');
  if (clientId === undefined) return { error: 'bad_encoding' };
  if (clientId.length > MAX_CLIENT_ID_LENGTH) return { error: 'too_long' };
  if (hasControlChar(clientId)) return { error: 'control_char' };
  if (clientId === '.' || clientId === '..') return { error: 'dot_segment' };
  if (!CLIENT_ID.test(clientId)) return { error: 'bad_client_id' };
  return { clientId };
}

/**
 * Checks the query string of a callback (or a form_post body) and returns its decoded
 * parameters.
 *
 * @param rawQuery the text after `?` (without the `?`), or the raw
 *   `application/x-www-form-urlencoded` body
 */
export function validateCallbackQuery(rawQuery: string): CallbackQueryResult {
  const refuse = (reason: CallbackRefusal): CallbackQueryResult => ({ ok: false, reason });
  if (typeof rawQuery !== 'string') return refuse('bad_encoding');
  if (rawQuery.length > MAX_QUERY_LENGTH) return refuse('too_long');
  if (rawQuery.length === 0) return refuse('missing_state');

  const params: Partial<Record<ParamName, string>> = {};
  const extra: Record<string, string> = Object.create(null) as Record<string, string>;
  let extras = 0;
  for (const pair of rawQuery.split('&')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return refuse('bad_encoding');
    const key = pair.slice(0, eq);
    if (!isParamName(key)) {
      const lower = key.toLowerCase();
      if (!EXTRA_NAME.test(key) || isParamName(lower) || RESERVED_NAMES.has(lower)) return refuse('unknown_param');
      if (++extras > MAX_EXTRA_PARAMS) return refuse('too_many_params');
      if (Object.hasOwn(extra, key)) return refuse('duplicate_param');
      const value = percentDecode(pair.slice(eq + 1).replace(/\+/g, ' '), 'strict');
      if (value === undefined) return refuse('bad_encoding');
      if (value.length > MAX_EXTRA_VALUE) return refuse('too_long');
      if (hasControlChar(value)) return refuse('control_char');
      extra[key] = value;
      continue;
    }
    if (params[key] !== undefined) return refuse('duplicate_param');
    const value = percentDecode(pair.slice(eq + 1).replace(/\+/g, ' '), 'strict');
    if (value === undefined) return refuse('bad_encoding');
    const rule = PARAM_RULES[key];
    if (value.length > rule.max) return refuse('too_long');
    if (hasControlChar(value)) return refuse('control_char');
    if (!rule.chars.test(value)) return refuse('bad_value');
    params[key] = value;
  }

  const { code, state, error } = params;
  if (state === undefined || state === '') return refuse('missing_state');
  const hasCode = code !== undefined && code !== '';
  const hasError = error !== undefined && error !== '';
  if (code !== undefined && error !== undefined) return refuse('both_code_and_error');
  if (!hasCode && !hasError) return refuse('missing_code');
  if (hasCode && (params.error_description !== undefined || params.error_uri !== undefined)) {
    return refuse('unexpected_param');
  }
  for (const key of ['error_description', 'error_uri', 'iss', 'session_state'] as const) {
    if (params[key] === '') return refuse('empty_param');
  }

  const result: CallbackParams = { state };
  for (const key of Object.keys(params) as ParamName[]) {
    const value = params[key];
    if (value !== undefined) result[key] = value;
  }
  if (extras > 0) result.extra = { ...extra };
  return { ok: true, params: result };
}
