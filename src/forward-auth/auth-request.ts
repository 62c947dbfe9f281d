/**
 * `GET <forwardAuth.path>/auth-request`: nginx `auth_request` and ingress-nginx
 * external auth.
 *
 * Rules: reads `X-Original-URI`, `X-Original-Method`, `X-Forwarded-Proto` and `Host`
 * only; answers 200, 401 (with `X-Auth-Request-Redirect` for a navigation), 403 or
 * 503, the only statuses nginx accepts from an auth service.
 */
import type { FastifyInstance } from 'fastify';
import { headerRoute, type HeaderEndpoint, type Translator } from './translate.js';

/** The nginx endpoint and the headers it reads. */
export const AUTH_REQUEST: HeaderEndpoint = {
  suffix: '/auth-request',
  family: 'auth-request',
  names: { method: 'x-original-method', proto: 'x-forwarded-proto', host: 'host', uri: 'x-original-uri' },
};

/** Registers the nginx endpoint. */
export function authRequestRoute(app: FastifyInstance, prefix: string, translator: Translator): void {
  headerRoute(app, prefix, AUTH_REQUEST, translator);
}
