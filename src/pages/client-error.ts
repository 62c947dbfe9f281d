/**
 * The public listener's answer to requests the HTTP parser refuses.
 *
 * Rules:
 * - parse errors and bad framing are a 400 page, oversized headers a 431 page, a
 *   request not received in time a 408 page: the gateway's own page with its security
 *   headers and `Cache-Control: no-store`, never fastify's JSON;
 * - the answer says `Connection: close` and the socket is closed after it, so a
 *   keep-alive client never sends its next request on a connection that is going away;
 * - a connection the client reset or that is already gone gets nothing.
 */
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { PAGE_HEADERS, renderPage } from './render.js';

const ANSWERS: Record<number, { reason: string; title: string; text: string }> = {
  400: { reason: 'Bad Request', title: 'Bad request', text: 'The request could not be read.' },
  408: { reason: 'Request Timeout', title: 'Request timed out', text: 'The request was not received in time. Please try again.' },
  431: { reason: 'Request Header Fields Too Large', title: 'Request headers too large', text: 'The request headers are too large. Clearing this site\u2019s cookies may help.' },
};

/** The status of a parser error: 408 for timeouts, 431 for oversized headers, otherwise 400. */
export function clientErrorStatus(code: string | undefined): 400 | 408 | 431 {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') return 408;
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  return 400;
}

/** The complete raw HTTP/1.1 answer for a refused request. */
function clientErrorResponse(status: 400 | 408 | 431): string {
  const a = ANSWERS[status]!;
  const body = renderPage({ status, title: a.title, paragraphs: [a.text] });
  const headers = { ...PAGE_HEADERS, connection: 'close', 'content-length': String(Buffer.byteLength(body)) };
  return `HTTP/1.1 ${status} ${a.reason}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`;
}

/** A fastify `clientErrorHandler` (called with the instance as `this`). */
export function pageClientErrorHandler(this: { log: FastifyBaseLogger }, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = clientErrorStatus(err.code);
  this.log.debug({ code: err.code, status }, 'request refused by the HTTP parser');
  const served = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || served?.headersSent) {
    socket.destroy();
    return;
  }
  socket.end(clientErrorResponse(status));
  setTimeout(() => socket.destroy(), 2000).unref();
}
