/**
 * The OpenAPI 3.1 description of the admin API, built from the same schemas that
 * validate the requests. Served at `GET /openapi.json` on the admin listener.
 */
import type { TSchema } from '@sinclair/typebox';
import { API_VERSION } from './envelope.js';
import { CompanyRef, ProviderList, ProviderRef, RevokeSessions, SaveProvider, UpdateCompanySso } from './payloads.js';

const ENDPOINTS: Array<[string, string, TSchema | undefined, boolean]> = [
  ['debug.ping', 'Answers without credentials.', undefined, false],
  ['system.update_company_sso_config', "Creates or updates a company's SSO settings (keys given replace, keys left out stay).", UpdateCompanySso, true],
  ['system.get_company_sso_config', "Reads a company's SSO settings.", CompanyRef, true],
  ['system.delete_company_sso_config', "Deletes a company's SSO settings; its providers stay.", CompanyRef, true],
  ['sso.save_provider_configuration', 'Creates or replaces an identity provider of a company; without client_secret the stored one is kept.', SaveProvider, true],
  ['sso.get_provider_configuration', 'Reads one provider (never its client_secret).', ProviderRef, true],
  ['sso.get_all_provider_configurations', 'Lists providers, of one company or all.', ProviderList, true],
  ['sso.delete_provider_configuration', 'Deletes one provider.', ProviderRef, true],
  ['sso.get_sessions_summary', "Counts a company's live sessions: {count, by_provider}.", CompanyRef, true],
  ['sso.revoke_sessions', "Ends one user's sessions (user: subject or verified email) or all of a company's (all: true), on every replica: {revoked}.", RevokeSessions, true],
];

const envelope = {
  type: 'object',
  required: ['meta', 'data'],
  properties: {
    meta: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        trx: { type: 'string' },
        endpoint: { type: 'object', properties: { name: { type: 'string' }, requested_version: { type: 'string' }, actual_version: { type: 'string' } } },
        result_code: { type: 'integer', description: 'Equals the HTTP status.' },
        result_subcode: { type: 'integer', description: '400/11 missing fields, 400/12 validation, 401/20 missing credentials, 401/21 bad credentials, 404/0 unknown endpoint, 404/1 not found, 409/1-4 tenant, domain, host or client_id taken, 503/0 store unavailable.' },
        result_msg: { type: 'string' },
        error_stack: { type: 'null' },
        error_data: { type: 'object' },
      },
    },
    data: { type: 'object' },
  },
};

/** The OpenAPI document. */
export function adminOpenApi(): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const [name, summary, schema, auth] of ENDPOINTS) {
    paths[`/${name}`] = {
      post: {
        operationId: name,
        summary,
        ...(auth ? {} : { security: [] }),
        ...(schema ? { requestBody: { required: true, content: { 'application/json': { schema } } } } : {}),
        responses: { default: { description: 'ClearML apiserver envelope', content: { 'application/json': { schema: { $ref: '#/components/schemas/Envelope' } } } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'tenant-gate admin API', version: API_VERSION, description: 'ClearML apiserver shaped: POST /<service>.<action>, optionally under /v<major>.<minor>/.' },
    security: [{ basic: [] }],
    components: { securitySchemes: { basic: { type: 'http', scheme: 'basic' } }, schemas: { Envelope: envelope } },
    paths,
  };
}
