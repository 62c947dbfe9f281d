/**
 * `GET <forwardAuth.path>/forward-auth`: Traefik `forwardAuth` and Caddy `forward_auth`.
 *
 * Rules: reads `X-Forwarded-Method`, `-Proto`, `-Host` (port included as given) and
 * `-Uri` only; answers 200 when allowed, otherwise what the built-in proxy would
 * (302 to the gateway's login for a navigation, 401 for other requests, 4xx pages).
 */
import type { FastifyInstance } from 'fastify';
import { headerRoute, type Translator } from './translate.js';

/** Registers the Traefik and Caddy endpoint. */
export function forwardAuthRoute(app: FastifyInstance, prefix: string, translator: Translator): void {
  headerRoute(app, `${prefix}/forward-auth`, 'forward-auth', translator, { method: 'x-forwarded-method', proto: 'x-forwarded-proto', host: 'x-forwarded-host', uri: 'x-forwarded-uri' });
}
