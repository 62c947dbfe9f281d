/**
 * The ClearML apiserver response envelope and the admin API's result codes.
 * The HTTP status always equals `result_code`.
 */
import { randomUUID } from 'node:crypto';

/** Version the admin API reports as `actual_version`. */
export const API_VERSION = '2.31';

/** Stable (result_code, result_subcode) pairs of the admin API. */
export const AdminCodes = {
  OK: [200, 0],
  MISSING_FIELDS: [400, 11],
  VALIDATION: [400, 12],
  MISSING_CREDENTIALS: [401, 20],
  BAD_CREDENTIALS: [401, 21],
  UNKNOWN_ENDPOINT: [404, 0],
  NOT_FOUND: [404, 1],
  TENANT_TAKEN: [409, 1],
  DOMAIN_TAKEN: [409, 2],
  HOST_TAKEN: [409, 3],
  CLIENT_ID_TAKEN: [409, 4],
  BODY_TOO_LARGE: [413, 0],
  TOO_MANY_ATTEMPTS: [429, 0],
  UNAVAILABLE: [503, 0],
  INTERNAL: [500, 0],
} as const satisfies Record<string, readonly [number, number]>;

export type AdminCode = (typeof AdminCodes)[keyof typeof AdminCodes];

/** The `meta` part of every response. */
interface EnvelopeMeta {
  id: string;
  trx: string;
  endpoint: { name: string; requested_version: string; actual_version: string };
  result_code: number;
  result_subcode: number;
  result_msg: string;
  error_stack: null;
  error_data: Record<string, unknown>;
}

/** What one admin call answered. */
export interface Envelope {
  meta: EnvelopeMeta;
  data: Record<string, unknown>;
}

/** Builds an envelope; `requestedVersion` is the `/vX.Y/` prefix when one was given. */
export function envelope(opts: {
  id: string;
  endpoint: string;
  requestedVersion?: string;
  code: AdminCode;
  msg?: string;
  data?: Record<string, unknown>;
  errorData?: Record<string, unknown>;
}): Envelope {
  return {
    meta: {
      id: randomUUID().replaceAll('-', ''),
      trx: opts.id,
      endpoint: { name: opts.endpoint, requested_version: opts.requestedVersion ?? API_VERSION, actual_version: API_VERSION },
      result_code: opts.code[0],
      result_subcode: opts.code[1],
      result_msg: opts.msg ?? 'OK',
      error_stack: null,
      error_data: opts.errorData ?? {},
    },
    data: opts.data ?? {},
  };
}
