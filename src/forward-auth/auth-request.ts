/**
 * `GET <forwardAuth.path>/auth-request`: nginx `auth_request` and ingress-nginx
 * external auth.
 *
 * Rules: reads `X-Original-URI`, `X-Original-Method`, `X-Forwarded-Proto` and `Host`
 * only; answers 200, 401 (with `X-Auth-Request-Redirect` for a navigation), 403 or
 * 503, the only statuses nginx accepts from an auth service.
 */
import type { FastifyInstance } from 'fastify';
import { reply, single, type Translator } from './translate.js';

/** Registers the nginx endpoint. */
export function authRequestRoute(app: FastifyInstance, prefix: string, translator: Translator): void {
  app.get(`${prefix}/auth-request`, (req, res) => {
    const h = req.headers;
    const a = translator.answer('auth-request', req, {
      method: single(h, 'x-original-method'),
      proto: single(h, 'x-forwarded-proto'),
      host: single(h, 'host'),
      uri: single(h, 'x-original-uri'),
    });
    return reply(res, a);
  });
}
