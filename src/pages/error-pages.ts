/**
 * The public listener's error handler and not-found handler: every error a browser
 * can meet is a page; internal details are logged, never shown.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { GatewayError, StoreUnavailableError, TooManyLookupsError } from '../errors.js';
import { sendPage } from './render.js';

const TITLES: Record<number, string> = {
  400: 'Bad request',
  404: 'Not found',
  405: 'Method not allowed',
  413: 'Request too large',
  414: 'Address too long',
  415: 'Unsupported content',
  429: 'Too many attempts',
  431: 'Request headers too large',
  503: 'Temporarily unavailable',
};

/** Installs page-rendering error and not-found handlers on the public listener. */
export function installErrorPages(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | GatewayError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (err instanceof StoreUnavailableError) {
      req.log.warn({ code: err.code, detail: err.detail }, 'request needs an engine that is unavailable');
      reply.header('retry-after', '5');
    } else if (err instanceof TooManyLookupsError) {
      req.log.info({ code: err.code }, 'too many lookups of unknown names from this client');
      reply.header('retry-after', String(err.retryAfterSeconds));
    } else if (status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: err.code, status }, 'request refused');
    const title = TITLES[status] ?? (status >= 500 ? 'Something went wrong' : 'Request refused');
    const paragraphs =
      status === 429
        ? ['Please wait a minute before trying again.']
        : status >= 500
          ? ['The gateway could not complete this request. Please try again in a moment.']
          : [err instanceof GatewayError && err.expose ? err.message : 'The request could not be processed.'];
    return sendPage(reply, status, { title, paragraphs });
  });
  app.setNotFoundHandler((_req, reply) => sendPage(reply, 404, { title: 'Not found', paragraphs: ['There is nothing at this address.'] }));
}
