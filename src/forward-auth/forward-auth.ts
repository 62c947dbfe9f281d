/**
 * `GET <forwardAuth.path>/forward-auth`: Traefik `forwardAuth` and Caddy `forward_auth`.
 *
 * Rules: reads `X-Forwarded-Method`, `-Proto`, `-Host` (port included as given) and
 * `-Uri` only; answers 200 when allowed, otherwise what the built-in proxy would
 * (302 to the gateway's login for a navigation, 401 for other requests, 4xx pages).
 */
import type { FastifyInstance } from 'fastify';
import { headerRoute, type HeaderEndpoint, type Translator } from './translate.js';

/** The Traefik and Caddy endpoint and the headers it reads. */
export const FORWARD_AUTH: HeaderEndpoint = {
  suffix: '/forward-auth',
  family: 'forward-auth',
  names: { method: 'x-forwarded-method', proto: 'x-forwarded-proto', host: 'x-forwarded-host', uri: 'x-forwarded-uri' },
};

/** Registers the Traefik and Caddy endpoint. */
export function forwardAuthRoute(app: FastifyInstance, prefix: string, translator: Translator): void {
  headerRoute(app, prefix, FORWARD_AUTH, translator);
}
