/**
 * `ANY <forwardAuth.path>/ext-authz/<original path>`: Envoy's `ext_authz` HTTP service.
 *
 * Rules: the original path and query follow the prefix; the original method and
 * `Host` (`:authority`) are the request's own; `X-Forwarded-Proto` gives the scheme.
 * Envoy passes a non-200 answer (status, headers, body) on to the client.
 */
import type { FastifyInstance } from 'fastify';
import { askerOf, reply, single, type Translator } from './translate.js';

/** Registers the Envoy endpoint. */
export function extAuthzRoute(app: FastifyInstance, prefix: string, translator: Translator): void {
  const base = `${prefix}/ext-authz`;
  app.all(`${base}/*`, (req, res) => {
    const a = translator.answer('ext-authz', askerOf(req), {
      method: req.method,
      proto: single(req.headers, 'x-forwarded-proto'),
      host: single(req.headers, 'host'),
      uri: req.url.slice(base.length),
    });
    return reply(res, a);
  });
}
