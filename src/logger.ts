/**
 * The process logger (pino, JSON lines). Secrets are redacted by path as a second
 * line of defence: nothing should log them in the first place.
 */
import { pino, stdSerializers, type Logger, type LoggerOptions } from 'pino';

/**
 * Paths that are always replaced by `[redacted]` in log lines. Explicit paths only: a
 * leading wildcard makes pino redact on every per-request child logger.
 */
const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'client_secret',
  'secret',
  'configuration.client_secret',
  'body.configuration.client_secret',
  'id_token',
  'access_token',
  'refresh_token',
  'idToken',
  'accessToken',
  'refreshToken',
]

const SENSITIVE_QUERY = /([?&](?:code|id_token_hint|id_token|access_token|refresh_token|token|client_secret|session_state|state)=)[^&#]*/gi;

/** A request URL with the values of credential-bearing query parameters replaced. */
function redactUrl(url: string): string {
  return url.includes('=') ? url.replace(SENSITIVE_QUERY, '$1[redacted]') : url;
}

/** Serializers for fastify's request log lines: no headers, a redacted URL. */
const requestSerializers = {
  req: (req: { method?: string; url?: string; id?: string; ip?: string; host?: string; hostname?: string }) => ({
    method: req.method,
    url: redactUrl(req.url ?? ''),
    host: req.host ?? req.hostname,
    remoteAddress: req.ip,
  }),
};

/** Creates the process logger; `destination` defaults to stdout. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options: LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { name: 'tenant-gate' },
    serializers: {
      req: requestSerializers.req,
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      err: (err: Error) => stdSerializers.err(err),
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
