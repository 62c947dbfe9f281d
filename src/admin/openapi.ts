/**
 * The OpenAPI 3.1 description of the admin API, built from the endpoint table
 * (endpoints.ts) and the same schemas that validate the requests. Served at `GET /openapi.json` on the admin listener.
 */
import { ADMIN_ENDPOINTS, type EndpointDeclaration } from './endpoints.js';
import { API_VERSION } from './envelope.js';

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
  for (const [name, declared] of Object.entries(ADMIN_ENDPOINTS)) {
    const { summary, schema, auth }: EndpointDeclaration = declared;
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
