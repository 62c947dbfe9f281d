/**
 * Idle timeouts of a proxied exchange, on the client's side.
 *
 * Rules:
 * - while the request body is not complete, no byte for `idleMs` is a 408 page with
 *   `Connection: close`, and the connection is closed (a trickling upload cannot hold
 *   an upstream connection for the whole request timeout);
 * - once the answer is being sent, a client that takes no byte for `idleMs` while the
 *   gateway has more to write is cut off (a slow reader cannot hold the upstream);
 * - waiting for the upstream is not the client's fault: the upstream timeouts apply.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PAGE_HEADERS, renderPage } from '../pages/render.js';

const PAGE_408 = renderPage({ status: 408, title: 'Request timed out', paragraphs: ['The request body stopped arriving. Please try again.'] });

/** Ends the unfinished body the upstream is reading, so that the upstream request is abandoned at once. */
function giveUp(req: FastifyRequest): void {
  if (!req.raw.destroyed) req.raw.destroy(Object.assign(new Error('request body idle'), { code: 'TG_BODY_IDLE' }));
}

/** Arms the idle timeouts on the request's connection for the rest of this exchange. */
export function armIdleTimeouts(req: FastifyRequest, reply: FastifyReply, idleMs: number): void {
  const socket = req.raw.socket;
  const res = reply.raw;
  // Injected requests (fastify.inject) have a stand-in socket without timers: nothing to arm.
  if (!socket || idleMs <= 0 || typeof socket.setTimeout !== 'function') return;
  res.on('timeout', () => {
    if (res.writableFinished) return;
    if (!req.raw.complete) {
      req.log.info({ idleMs }, 'request body idle: closing the connection');
      if (!res.headersSent) {
        res.writeHead(408, { ...PAGE_HEADERS, connection: 'close', 'content-length': Buffer.byteLength(PAGE_408) });
        res.end(PAGE_408);
        socket.once('close', () => giveUp(req));
        setTimeout(() => socket.destroy(), 1000).unref();
      } else {
        socket.destroy();
        giveUp(req);
      }
      return;
    }
    if (res.headersSent && res.writableNeedDrain) {
      req.log.info({ idleMs }, 'client stopped reading the answer: closing the connection');
      socket.destroy();
      return;
    }
    socket.setTimeout(idleMs);
  });
  socket.setTimeout(idleMs);
}
