/**
 * Request hooks whose common case needs no I/O: a decision that is known at once goes
 * on (or is answered) in the same tick, and only a decision that has to wait for a
 * store is continued asynchronously.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';

/**
 * What a decision returns: `undefined` to let the request go on, the reply when it has
 * been answered, or a promise of either.
 */
export type Decision = FastifyReply | undefined | Promise<unknown>;

/**
 * Turns a decision function into a callback-style `onRequest` hook.
 *
 * @param decide the decision; it may throw or reject
 * @param recover answers the request for errors it knows and returns true; other
 *   errors go to fastify's error handler
 */
export function decisionHook(
  decide: (req: FastifyRequest, reply: FastifyReply) => Decision,
  recover?: (err: unknown, req: FastifyRequest, reply: FastifyReply) => boolean,
): (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void {
  return (req, reply, done) => {
    const fail = (err: unknown) => {
      if (!recover?.(err, req, reply)) done(err instanceof Error ? err : new Error(String(err)));
    };
    let outcome: Decision;
    try {
      outcome = decide(req, reply);
    } catch (err) {
      fail(err);
      return;
    }
    if (outcome === undefined) return done();
    if (outcome === reply) return;
    (outcome as Promise<unknown>)
      .then(() => {
        if (!reply.sent) done();
      })
      .catch(fail);
  };
}
