/**
 * Idle timeouts of a proxied exchange, on the client's side.
 *
 * Rules:
 * - while the request body is not complete, no byte for `idleMs` is a 408 page with
 *   `Connection: close`, and the connection is closed (a trickling upload cannot hold
 *   an upstream connection for the whole request timeout);
 * - once the answer is being sent, a client that takes no byte for `idleMs` while the
 *   gateway has more to write is cut off (a slow reader cannot hold the upstream);
 * - waiting for the upstream is not the client's fault: the upstream timeouts apply;
 * - any other connection timeout (an idle keep-alive connection) closes the connection,
 *   as Node.js does by default.
 *
 * One `timeout` listener per server serves every connection; arming an exchange only
 * marks it on its socket and sets the socket's timer.
 */
import type { FastifyReply } from 'fastify';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { PAGE_HEADERS, renderPage } from '../pages/render.js';

const PAGE_408 = renderPage({ status: 408, title: 'Request timed out', paragraphs: ['The request body stopped arriving. Please try again.'] });

/** The proxied exchange a socket's timer was armed for. */
const EXCHANGE = Symbol('tenant-gate proxied exchange');

type Marked = Socket & { [EXCHANGE]?: FastifyReply };

/** Ends the unfinished body the upstream is reading, so that the upstream request is abandoned at once. */
function giveUp(reply: FastifyReply): void {
  const raw = reply.request.raw;
  if (!raw.destroyed) raw.destroy(Object.assign(new Error('request body idle'), { code: 'TG_BODY_IDLE' }));
}

function onTimeout(socket: Marked, idleMs: number): void {
  const reply = socket[EXCHANGE];
  const res = reply?.raw;
  if (!reply || !res || res.writableFinished || res.socket !== socket) {
    socket.destroy();
    return;
  }
  const req = reply.request;
  if (!req.raw.complete) {
    req.log.info({ idleMs }, 'request body idle: closing the connection');
    if (!res.headersSent) {
      res.writeHead(408, { ...PAGE_HEADERS, connection: 'close', 'content-length': Buffer.byteLength(PAGE_408) });
      res.end(PAGE_408);
      socket.once('close', () => giveUp(reply));
      setTimeout(() => socket.destroy(), 1000).unref();
    } else {
      socket.destroy();
      giveUp(reply);
    }
    return;
  }
  if (res.headersSent && res.writableNeedDrain) {
    req.log.info({ idleMs }, 'client stopped reading the answer: closing the connection');
    socket.destroy();
    return;
  }
  socket.setTimeout(idleMs);
}

/**
 * Returns how to arm an exchange for the rest of its life; the first exchange of each
 * server (fastify may listen on several addresses) installs that server's listener.
 */
export function idleTimeouts(idleMs: number): (reply: FastifyReply) => void {
  const listening = new WeakSet<Server>();
  return (reply) => {
    const socket: (Marked & { server?: Server }) | undefined = reply.request.raw.socket;
    // Injected requests (fastify.inject) have a stand-in socket without timers: nothing to arm.
    const server = socket?.server;
    if (!socket || !server || typeof socket.setTimeout !== 'function') return;
    if (!listening.has(server)) {
      listening.add(server);
      server.on('timeout', (s: Socket) => onTimeout(s, idleMs));
    }
    socket[EXCHANGE] = reply;
    socket.setTimeout(idleMs);
  };
}
