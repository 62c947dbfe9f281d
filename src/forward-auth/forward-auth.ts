/**
 * `GET <forwardAuth.path>/forward-auth`: Traefik `forwardAuth` and Caddy `forward_auth`.
 *
 * Rules: reads `X-Forwarded-Method`, `-Proto`, `-Host` (port included as given) and
 * `-Uri` only; answers 200 when allowed, otherwise what the built-in proxy would
 * (302 to the gateway's login for a navigation, 401 for other requests, 4xx pages).
 */
import type { FastifyInstance } from 'fastify';
import { reply, single, type Translator } from './translate.js';

/** Registers the Traefik and Caddy endpoint. */
export function forwardAuthRoute(app: FastifyInstance, prefix: string, translator: Translator): void {
  app.get(`${prefix}/forward-auth`, (req, res) => {
    const h = req.headers;
    const a = translator.answer('forward-auth', req, {
      method: single(h, 'x-forwarded-method'),
      proto: single(h, 'x-forwarded-proto'),
      host: single(h, 'x-forwarded-host'),
      uri: single(h, 'x-forwarded-uri'),
    });
    return reply(res, a);
  });
}
