/**
 * Every error the gateway raises on purpose, with a stable code.
 *
 * `message` is what a client may see; `detail` is only ever logged. Raw errors from
 * providers, databases or the network are wrapped at the boundary (`cause`) and never
 * shown to a user.
 */

/** Stable error codes. Never renumber or rename: operators alert on them. */
export const ErrorCodes = {
  CONFIG_INVALID: 'TG_CONFIG_INVALID',
  STORE_CONFLICT: 'TG_STORE_CONFLICT',
  STORE_UNAVAILABLE: 'TG_STORE_UNAVAILABLE',
  NOT_FOUND: 'TG_NOT_FOUND',
  VALIDATION: 'TG_VALIDATION',
  MISSING_FIELDS: 'TG_MISSING_FIELDS',
  BAD_CALLBACK: 'TG_BAD_CALLBACK',
  BAD_LOGOUT_TOKEN: 'TG_BAD_LOGOUT_TOKEN',
  PROVIDER_UNAVAILABLE: 'TG_PROVIDER_UNAVAILABLE',
  PROVIDER_MISCONFIGURED: 'TG_PROVIDER_MISCONFIGURED',
  TOO_MANY_LOOKUPS: 'TG_TOO_MANY_LOOKUPS',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base class: a public message, a status and a detail that is only logged. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Logged, never sent to a client. */
  readonly detail?: string;
  /** 4xx errors may show their message; 5xx show a generic one. */
  get expose(): boolean {
    return this.statusCode < 500;
  }

  constructor(code: ErrorCode, statusCode: number, message: string, options?: { detail?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.statusCode = statusCode;
    if (options?.detail !== undefined) this.detail = options.detail;
  }
}

/** One problem found in a configuration, with the path of the offending key. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** The configuration cannot be used; `problems` lists every error with its path. */
export class ConfigError extends GatewayError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(
      ErrorCodes.CONFIG_INVALID,
      500,
      `invalid configuration:\n${problems.map((p) => `  ${p.path || '/'}: ${p.message}`).join('\n')}`,
    );
    this.problems = problems;
  }
}

/** Which unique field a conflicting write collided on. */
export type ConflictField = 'tenant' | 'domain' | 'host' | 'client_id';

/** A write would give a tenant, domain, host or client_id to a second company. */
export class ConflictError extends GatewayError {
  readonly field: ConflictField;
  readonly value: string;
  constructor(field: ConflictField, value: string) {
    super(ErrorCodes.STORE_CONFLICT, 409, `${field} "${value}" already belongs to another company`);
    this.field = field;
    this.value = value;
  }
}

/** The store (or another engine the request needs) cannot be reached. */
export class StoreUnavailableError extends GatewayError {
  constructor(cause?: unknown) {
    super(ErrorCodes.STORE_UNAVAILABLE, 503, 'the tenant directory is unavailable', {
      cause,
      detail: cause instanceof Error ? cause.message : undefined,
    });
  }
}

/** An input failed validation; `field` is the path of the offending value. */
export class ValidationError extends GatewayError {
  readonly field: string;
  constructor(field: string, message: string) {
    super(ErrorCodes.VALIDATION, 400, message);
    this.field = field;
  }
}

/** Required fields are missing from an input. */
export class MissingFieldsError extends GatewayError {
  readonly fields: string[];
  constructor(fields: string[]) {
    super(ErrorCodes.MISSING_FIELDS, 400, `missing required fields: ${fields.join(', ')}`);
    this.fields = fields;
  }
}

/** A record the caller named does not exist. */
export class NotFoundError extends GatewayError {
  constructor(message: string) {
    super(ErrorCodes.NOT_FOUND, 404, message);
  }
}

/** A client asked for too many names the directory does not know; it may retry later. */
export class TooManyLookupsError extends GatewayError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number) {
    super(ErrorCodes.TOO_MANY_LOOKUPS, 429, 'Too many requests for unknown addresses. Please wait a minute.');
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
