/**
 * The public listener's HTTP server, made for fastify (its `serverFactory`), with one
 * place before fastify's routing where fixed, hot paths may be answered directly.
 *
 * Rules: a claimed request never reaches fastify and an unclaimed one reaches it
 * untouched; once the listener starts closing nothing is claimed (fastify answers 503);
 * the server gets the timeouts fastify would have set on its own server.
 */
import type { FastifyServerFactory, FastifyServerFactoryHandler } from 'fastify';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

/** Answers a request and returns true, or returns false and leaves it alone. */
export type Claim = (req: IncomingMessage, res: ServerResponse) => boolean;

/** The server factory and the place to put claims. */
export interface FrontDoor {
  /** For fastify's `serverFactory` option. */
  serverFactory: FastifyServerFactory;
  /** Adds a claim; claims are asked in the order they were added. */
  claim(claim: Claim): void;
  /** From now on every request goes to fastify. */
  close(): void;
}

/** Creates a front door (no server until fastify asks for one). */
export function createFrontDoor(): FrontDoor {
  const claims: Claim[] = [];
  let open = true;
  const serverFactory: FastifyServerFactory = (handler: FastifyServerFactoryHandler, opts: Record<string, unknown>) => {
    const dispatch = (req: IncomingMessage, res: ServerResponse) => {
      if (open) {
        for (const claim of claims) if (claim(req, res)) return;
      }
      handler(req, res);
    };
    const server = createServer((opts.http as object | undefined) ?? {}, dispatch);
    server.keepAliveTimeout = opts.keepAliveTimeout as number;
    server.requestTimeout = opts.requestTimeout as number;
    server.setTimeout(opts.connectionTimeout as number);
    const perSocket = opts.maxRequestsPerSocket as number;
    if (perSocket > 0) server.maxRequestsPerSocket = perSocket;
    return server;
  };
  return {
    serverFactory,
    claim: (claim) => void claims.push(claim),
    close: () => {
      open = false;
    },
  };
}
