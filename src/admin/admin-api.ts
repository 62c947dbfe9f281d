/**
 * The admin API in the ClearML apiserver shape: `POST /<service>.<action>`, an
 * optional `/vX.Y/` prefix, HTTP Basic, and the response envelope.
 *
 * Rules: every call but `debug.ping` needs valid credentials; any body is read as
 * JSON whatever its content type; a refused call changes nothing; providers leave
 * only through `providerView` (never with `client_secret`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ConflictError, GatewayError, MissingFieldsError, NotFoundError, StoreUnavailableError, ValidationError } from '../errors.js';
import { clientKey } from '../net/client-key.js';
import { AuthThrottle, basicAuthChecker } from './basic-auth.js';
import { companyView, providerView, type DirectoryAdmin } from './directory-admin.js';
import { AdminCodes, envelope, type AdminCode } from './envelope.js';
import { ADMIN_ENDPOINTS, type EndpointName } from './endpoints.js';
import { adminOpenApi } from './openapi.js';
import { CompanyRef, createValidators, ProviderList, ProviderRef, RevokeSessions, SaveProvider, UpdateCompanySso } from './payloads.js';
import { SessionsAdmin } from './sessions-admin.js';
import { logoutUris } from '../cli/describe.js';
import type { Provider } from '../directory/types.js';

/** Options of the admin API plugin. */
interface AdminApiOptions {
  credentials: ReadonlyArray<{ key: string; secret: string }>;
  admin: DirectoryAdmin;
  /** The origins a tenant is served on, for the logout URIs in provider read-backs (authenticate mode). */
  originsOf?: (tenant: string, hosts: string[]) => string[];
  /** Live sessions (authenticate mode); without it the session endpoints count none. */
  sessions?: SessionsAdmin;
  bodyLimit: number;
  /** Bounds authentication failures per client (default: one check at a time, 5 free, then 100 ms doubling, locked out after 10). */
  throttle?: AuthThrottle;
  /** Told of every call refused for missing or wrong credentials (metrics). */
  onAuthFailure?: (reason: 'missing' | 'bad') => void;
}

type Handler = (body: unknown) => Promise<Record<string, unknown>>;

const ENDPOINT = /^[a-z_]+\.[a-z_]+$/;
const VERSION = /^v(\d{1,3}\.\d{1,3})$/;

const CONFLICT_CODES: Record<ConflictError['field'], AdminCode> = {
  tenant: AdminCodes.TENANT_TAKEN,
  domain: AdminCodes.DOMAIN_TAKEN,
  host: AdminCodes.HOST_TAKEN,
  client_id: AdminCodes.CLIENT_ID_TAKEN,
};

function errorReply(err: unknown): { code: AdminCode; msg: string; errorData?: Record<string, unknown> } {
  if (err instanceof MissingFieldsError) return { code: AdminCodes.MISSING_FIELDS, msg: `Validation error (missing required fields: ${err.fields.join(', ')})`, errorData: { missing_fields: err.fields } };
  if (err instanceof ValidationError) return { code: AdminCodes.VALIDATION, msg: `Validation error (field: ${err.field}): ${err.message}`, errorData: { field: err.field } };
  if (err instanceof ConflictError) return { code: CONFLICT_CODES[err.field], msg: err.message, errorData: { field: err.field, value: err.value } };
  if (err instanceof NotFoundError) return { code: AdminCodes.NOT_FOUND, msg: err.message };
  if (err instanceof StoreUnavailableError) return { code: AdminCodes.UNAVAILABLE, msg: 'The tenant directory is unavailable, try again later' };
  if (err instanceof GatewayError && err.expose) return { code: AdminCodes.VALIDATION, msg: err.message };
  return { code: AdminCodes.INTERNAL, msg: 'Internal error' };
}

function handlers(admin: DirectoryAdmin, sessions: SessionsAdmin, validate: ReturnType<typeof createValidators>, originsOf?: AdminApiOptions['originsOf']): Record<EndpointName, Handler> {
  /** A provider as read back: its view, plus the logout URIs to register when its company has a tenant. */
  const readBack = async (p: Provider): Promise<Record<string, unknown>> => {
    const view = providerView(p);
    if (!originsOf) return view;
    const company = await admin.getCompanySso(p.company).catch(() => undefined);
    if (!company) return view;
    return { ...view, logout_uris: logoutUris(originsOf(company.sso.tenant, company.sso.hosts), p.configuration.client_id) };
  };
  return {
    'debug.ping': async () => ({ msg: 'tenant-gate admin API' }),
    'system.update_company_sso_config': async (body) => ({ updated: 1, ...companyView(await admin.updateCompanySso(validate(UpdateCompanySso, body))) }),
    'system.get_company_sso_config': async (body) => companyView(await admin.getCompanySso(validate(CompanyRef, body).company)),
    'system.delete_company_sso_config': async (body) => {
      const { company } = validate(CompanyRef, body);
      await admin.deleteCompanySso(company);
      await sessions.end(company, 'tenant_deleted');
      return { deleted: 1 };
    },
    'sso.save_provider_configuration': async (body) => {
      const p = await admin.saveProvider(validate(SaveProvider, body));
      return { id: p.configuration.id, ...providerView(p) };
    },
    'sso.get_provider_configuration': async (body) => {
      const ref = validate(ProviderRef, body);
      return readBack(await admin.getProvider(ref.company, ref.id));
    },
    'sso.get_all_provider_configurations': async (body) => ({ providers: await Promise.all((await admin.listProviders(validate(ProviderList, body).company)).map(readBack)) }),
    'sso.delete_provider_configuration': async (body) => {
      const ref = validate(ProviderRef, body);
      await admin.deleteProvider(ref.company, ref.id);
      return { deleted: 1 };
    },
    'sso.get_sessions_summary': async (body) => sessions.summary(validate(CompanyRef, body).company),
    'sso.revoke_sessions': async (body) => sessions.revoke(validate(RevokeSessions, body)),
  };
}

async function adminApi(app: FastifyInstance, opts: AdminApiOptions): Promise<void> {
  const checkAuth = basicAuthChecker(opts.credentials);
  const throttle = opts.throttle ?? new AuthThrottle();
  const table = handlers(opts.admin, opts.sessions ?? new SessionsAdmin({}), createValidators(), opts.originsOf);
  const isEndpoint = (name: string): name is EndpointName => ENDPOINT.test(name) && Object.hasOwn(ADMIN_ENDPOINTS, name);

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: opts.bodyLimit }, (_req, body, done) => {
    const text = String(body).trim();
    if (text === '') return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new ValidationError('body', 'the body is not valid JSON'), undefined);
    }
  });

  const send = (req: FastifyRequest, reply: FastifyReply, name: string, version: string | undefined, r: ReturnType<typeof errorReply> & { data?: Record<string, unknown> }) =>
    reply
      .code(r.code[0])
      .header('cache-control', 'no-store')
      .send(envelope({ id: req.id, endpoint: name, ...(version ? { requestedVersion: version } : {}), code: r.code, msg: r.msg, ...(r.data ? { data: r.data } : {}), ...(r.errorData ? { errorData: r.errorData } : {}) }));

  const handle = async (req: FastifyRequest<{ Params: { version?: string; endpoint: string } }>, reply: FastifyReply) => {
    const { endpoint: name } = req.params;
    let version: string | undefined;
    if (req.params.version !== undefined) {
      const m = VERSION.exec(req.params.version);
      if (!m) return send(req, reply, name, undefined, { code: AdminCodes.UNKNOWN_ENDPOINT, msg: `Unknown endpoint ${req.url.split('?')[0]}` });
      version = m[1];
    }
    if (!isEndpoint(name)) return send(req, reply, name, version, { code: AdminCodes.UNKNOWN_ENDPOINT, msg: `Unknown endpoint ${name}` });
    const auth = ADMIN_ENDPOINTS[name].auth;
    if (auth) {
      const turn = await throttle.run(clientKey(req.ip), () => checkAuth(req.headers.authorization), (r) => (r.ok ? true : r.reason === 'bad' ? false : undefined));
      if (!turn.checked) {
        reply.header('retry-after', String(Math.ceil(turn.retryAfterMs / 1000)));
        req.log.warn({ endpoint: name }, 'admin authentication refused: too many failures from this address');
        return send(req, reply, name, version, { code: AdminCodes.TOO_MANY_ATTEMPTS, msg: 'Too many failed authentication attempts, try again later' });
      }
      const checked = turn.result;
      if (!checked.ok) {
        opts.onAuthFailure?.(checked.reason);
        reply.header('www-authenticate', 'Basic realm="tenant-gate admin"');
        req.log.warn({ endpoint: name, reason: checked.reason }, 'admin authentication failed');
        return send(req, reply, name, version, checked.reason === 'missing'
          ? { code: AdminCodes.MISSING_CREDENTIALS, msg: 'Unauthorized (missing credentials)' }
          : { code: AdminCodes.BAD_CREDENTIALS, msg: 'Unauthorized (invalid credentials)' });
      }
    }
    try {
      const data = await table[name](req.body ?? {});
      if (auth) req.log.info({ endpoint: name }, 'admin call');
      return send(req, reply, name, version, { code: AdminCodes.OK, msg: 'OK', data });
    } catch (err) {
      const r = errorReply(err);
      if (r.code[0] >= 500) req.log.error({ endpoint: name, err }, 'admin call failed');
      else req.log.info({ endpoint: name, code: r.code, msg: r.msg }, 'admin call refused');
      return send(req, reply, name, version, r);
    }
  };

  const openapi = JSON.stringify(adminOpenApi());
  app.get('/openapi.json', async (_req, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(openapi));
  app.route({ method: ['GET', 'POST'], url: '/:endpoint', handler: handle });
  app.route({ method: ['GET', 'POST'], url: '/:version/:endpoint', handler: handle });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const name = (req.params as { endpoint?: string } | undefined)?.endpoint ?? '';
    if (err instanceof ValidationError) return send(req, reply, name, undefined, errorReply(err));
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(req, reply, name, undefined, { code: AdminCodes.BODY_TOO_LARGE, msg: 'The body is too large' });
    if ((err.statusCode ?? 500) < 500) return send(req, reply, name, undefined, { code: AdminCodes.VALIDATION, msg: 'Invalid request' });
    req.log.error({ err }, 'admin request failed');
    return send(req, reply, name, undefined, { code: AdminCodes.INTERNAL, msg: 'Internal error' });
  });
  app.setNotFoundHandler((req, reply) => send(req, reply, '', undefined, { code: AdminCodes.UNKNOWN_ENDPOINT, msg: `Unknown endpoint ${req.url.split('?')[0]}` }));
}

/** Registers the admin API routes on the admin listener. */
export default fp(adminApi, { name: 'tenant-gate-admin-api', fastify: '5.x' });
