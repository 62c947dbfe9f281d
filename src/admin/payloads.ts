/**
 * Schemas of the admin API's request bodies. Unknown keys are refused; the first
 * problem is reported with its dotted field path (`sso.tenant`, `configuration.client_id`).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { MissingFieldsError, ValidationError } from '../errors.js';
import { AUTH_METHOD_PREFERENCE as AUTH_METHODS } from '../oidc/client-registry.js';
import { ASYMMETRIC_ALGORITHMS, SYMMETRIC_ALGORITHM } from '../oidc/jwks.js';

const Name = (max = 256) => Type.String({ minLength: 1, maxLength: max });
const NameList = Type.Array(Name(), { maxItems: 1000 });
const strict = { additionalProperties: false } as const;

const CompanyId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\x00-\\x1f\\x7f]+$' });

const SsoInput = Type.Object(
  {
    tenant: Type.String({ minLength: 1, maxLength: 63 }),
    group_mapping: Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.Union([Name(), Type.Array(Name(), { minItems: 1, maxItems: 100 })]), {
      maxProperties: 1000,
    }),
    admin_groups: NameList,
    groups: NameList,
    domains: Type.Array(Type.String({ maxLength: 253 }), { maxItems: 100 }),
    hosts: Type.Array(Type.String({ maxLength: 253 }), { maxItems: 100 }),
    display_name: Type.String({ maxLength: 256 }),
    /** `aud` of X-Auth-Request-Jwt; '' goes back to the tenant's origin. */
    assertion_audience: Type.String({ maxLength: 2048, pattern: '^[\\x21-\\x7e]*$' }),
  },
  { ...strict, minProperties: 0 },
);

export const UpdateCompanySso = Type.Object({ company: CompanyId, sso: Type.Partial(SsoInput, strict) }, strict);
export const CompanyRef = Type.Object({ company: CompanyId }, strict);

const Url = Type.String({ minLength: 1, maxLength: 2048 });
const ProviderConfigurationInput = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\x00-\\x1f\\x7f]+$' }),
    display_name: Type.Optional(Type.String({ maxLength: 256 })),
    client_id: Type.String({ minLength: 1, maxLength: 255, pattern: "^[A-Za-z0-9._~:@!$&'()*+,;=-]+$" }),
    client_secret: Type.Optional(Type.String({ maxLength: 4096 })),
    authorization_endpoint: Type.Optional(Url),
    token_endpoint: Type.Optional(Url),
    revocation_endpoint: Type.Optional(Url),
    end_session_endpoint: Type.Optional(Url),
    userinfo_endpoint: Type.Optional(Url),
    issuer: Type.Optional(Url),
    jwks_uri: Type.Optional(Url),
    logout_from_provider: Type.Optional(Type.Boolean()),
    /** Gateway extension: accept OpenID Connect Front-Channel Logout from this provider. */
    frontchannel_logout: Type.Optional(Type.Boolean()),
    claim_tenant: Type.Optional(Name(128)),
    claim_name: Type.Optional(Name(128)),
    claim_email: Type.Optional(Name(128)),
    group_enabled: Type.Optional(Type.Boolean()),
    claim_groups: Type.Optional(Name(128)),
    group_prohibit_user_login_if_not_in_group: Type.Optional(Type.Boolean()),
    trust_unverified_email: Type.Optional(Type.Boolean()),
    scope: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+( [\\x21\\x23-\\x5B\\x5D-\\x7E]+)*$' })),
    token_endpoint_auth_method: Type.Optional(Type.Union(AUTH_METHODS.map((m) => Type.Literal(m)))),
    claims_source: Type.Optional(Type.Union([Type.Literal('id_token'), Type.Literal('userinfo'), Type.Literal('both')])),
    id_token_signed_response_alg: Type.Optional(Type.Union([...ASYMMETRIC_ALGORITHMS, SYMMETRIC_ALGORITHM].map((a) => Type.Literal(a)))),
  },
  strict,
);

export const SaveProvider = Type.Object(
  {
    provider: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' }),
    company: CompanyId,
    configuration: ProviderConfigurationInput,
  },
  strict,
);
export const ProviderRef = Type.Object({ company: CompanyId, id: Type.String({ minLength: 1, maxLength: 128 }) }, strict);
export const ProviderList = Type.Object({ company: Type.Optional(CompanyId) }, strict);
export const RevokeSessions = Type.Object(
  {
    company: CompanyId,
    /** A subject, or a verified email. */
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
    all: Type.Optional(Type.Boolean()),
  },
  strict,
);

export type UpdateCompanySsoBody = Static<typeof UpdateCompanySso>;
export type SaveProviderBody = Static<typeof SaveProvider>;

function dotted(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').filter(Boolean);
  if (extra) parts.push(extra);
  return parts.map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~')).join('.');
}

function toError(errors: ErrorObject[]): Error {
  const missing = errors.filter((e) => e.keyword === 'required');
  if (missing.length > 0) {
    return new MissingFieldsError(missing.map((e) => dotted(e.instancePath, (e.params as { missingProperty: string }).missingProperty)));
  }
  const e = errors[0]!;
  if (e.keyword === 'additionalProperties') {
    const field = dotted(e.instancePath, (e.params as { additionalProperty: string }).additionalProperty);
    return new ValidationError(field, `unknown field ${field}`);
  }
  const field = dotted(e.instancePath) || 'body';
  return new ValidationError(field, `${field} ${e.message ?? 'is invalid'}`);
}

/** Compiles body validators once per app. */
export function createValidators() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const cache = new Map<TSchema, ValidateFunction>();
  return <T extends TSchema>(schema: T, body: unknown): Static<T> => {
    let v = cache.get(schema);
    if (!v) {
      v = ajv.compile(schema);
      cache.set(schema, v);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('body', 'the body must be a JSON object');
    if (!v(body)) throw toError(v.errors ?? []);
    return body;
  };
}
