/**
 * The public listener's translation between HTTP and the decision: one `onRequest`
 * hook builds the request context (the listener's only request decoration, `gate`),
 * asks the pipeline, and turns the decision into a reply; a `preParsing` hook checks
 * form_post callback bodies. No rule lives here: they are the steps of decide.ts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import { Readable, type Duplex } from 'node:stream';
import type { ClientRecord } from '../directory/types.js';
import { StoreUnavailableError } from '../errors.js';
import { isPromise } from '../is-promise.js';
import { sendPage } from '../pages/render.js';
import { validateCallbackQuery, type CallbackParams } from '../tenancy/callback.js';
import { createContext, type RequestContext, type SiteContext } from './context.js';
import type { Decision } from './decision.js';
import { createDecider } from './decide.js';
import type { PipelineEnv } from './env.js';
import { classifyRequest } from '../observability/request-timing.js';
import type { Tracing } from '../observability/tracing.js';
import { refuseCallback } from './steps/callback.js';
import { unavailablePage } from './steps/pages.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request context: set by the first hook of the public listener, for every request. */
    gate: RequestContext;
  }
}

/** What authenticate mode does for the decisions only it makes. */
export interface AuthenticateHandlers {
  login(ctx: SiteContext, reply: FastifyReply, login: Extract<Decision, { kind: 'login' }>): Promise<unknown>;
  callback(ctx: SiteContext, reply: FastifyReply, client: ClientRecord, params: CallbackParams): Promise<unknown>;
  logout(ctx: SiteContext, reply: FastifyReply): Promise<unknown>;
}

/** Options of the gate plugin. */
interface GatePluginOptions {
  env: PipelineEnv;
  /** Present in authenticate mode. */
  handlers?: AuthenticateHandlers;
  /** Told of every websocket upgrade passed on under a session (authenticate mode). */
  onSessionUpgrade?(sessionId: string, socket: Duplex): void;
  bodyLimit: number;
  /** Sampled requests decide inside their span's scope (login flows in its asynchronous scope), so store and provider calls become its children. */
  tracing?: Pick<Tracing, 'scope' | 'scopeAsync'>;
}

async function readBody(stream: NodeJS.ReadableStream, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function logDecision(req: FastifyRequest, d: Extract<Decision, { kind: 'page' | 'redirect' }>): void {
  switch (d.reason) {
    case undefined:
    case 'needs_login':
      return;
    case 'unknown_host':
    case 'bad_host':
      req.log.info({ reason: d.reason }, 'request for an unknown host refused');
      return;
    case 'store_unavailable':
      req.log.error({ reason: d.reason }, 'tenant directory unavailable');
      return;
    case 'rate_limited':
      req.log.warn({ reason: d.reason }, 'rate limit exceeded');
      return;
    case 'unsafe_redirect_param':
      req.log.info({ reason: d.reason }, 'unsafe redirect parameter removed from the address');
      return;
    case 'unknown_tenant':
    case 'gateway_path_under_api':
      return;
    default:
      req.log.warn({ reason: d.reason, tenant: d.kind === 'page' ? d.tenant : undefined }, 'callback refused');
  }
}

async function gate(app: FastifyInstance, opts: GatePluginOptions): Promise<void> {
  const { env, handlers } = opts;
  const decider = createDecider(env);

  function needsHandlers(): AuthenticateHandlers {
    if (!handlers) throw new Error('authenticate-mode decision without authenticate mode');
    return handlers;
  }

  /** Runs a login flow; a sampled request's store and provider calls become children of its span. */
  function flow<T>(req: FastifyRequest, run: () => Promise<T>): Promise<T> {
    return req.traceSpan && opts.tracing ? opts.tracing.scopeAsync(req.traceSpan, run) : run();
  }

  /** Turns a decision into a reply; undefined lets the request go on to its route. */
  function apply(req: FastifyRequest, reply: FastifyReply, d: Decision): FastifyReply | undefined | Promise<unknown> {
    const ctx = req.gate;
    switch (d.kind) {
      case 'pass':
        ctx.view = d.view;
        if (d.view.sessionId !== undefined && opts.onSessionUpgrade && req.headers.upgrade !== undefined) opts.onSessionUpgrade(d.view.sessionId, req.raw.socket);
        return undefined;
      case 'local':
        return undefined;
      case 'form-callback':
        ctx.view = d.view;
        ctx.formCallback = d.client;
        return undefined;
      case 'redirect':
        logDecision(req, d);
        return reply.redirect(d.location, d.status);
      case 'page':
        logDecision(req, d);
        if (d.headers) reply.headers(d.headers);
        return sendPage(reply, d.status, d.page);
      case 'unauthorized':
        return reply
          .code(401)
          .header('cache-control', 'no-store')
          .header('content-type', 'application/json; charset=utf-8')
          .send({ error: 'unauthorized', message: 'sign in first' });
      case 'login':
        return flow(req, () => needsHandlers().login(ctx as SiteContext, reply, d));
      case 'callback':
        return flow(req, () => needsHandlers().callback(ctx as SiteContext, reply, d.client, d.params));
      case 'logout':
        return flow(req, () => needsHandlers().logout(ctx as SiteContext, reply));
    }
  }

  function handle(req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const fail = (err: unknown) => {
      if (err instanceof StoreUnavailableError) {
        req.log.error({ err: err.detail }, 'an engine the request needs is unavailable');
        const page = unavailablePage();
        if (page.kind === 'page') sendPage(reply.headers(page.headers ?? {}), page.status, page.page);
        return;
      }
      done(err instanceof Error ? err : new Error(String(err)));
    };
    const finish = (d: Decision) => {
      const out = apply(req, reply, d);
      if (out === undefined) return done();
      if (out === reply) return;
      (out as Promise<unknown>).then(() => {
        if (!reply.sent) done();
      }, fail);
    };
    try {
      req.gate = createContext({ method: req.method, host: req.host, url: req.url, headers: req.headers, clientAddress: req.ip }, env.apiPrefix);
      const decided = decider.decideContext(req.gate);
      if (isPromise(decided)) void decided.then(finish, fail);
      else finish(decided);
    } catch (err) {
      fail(err);
    }
  }

  function onRequest(req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const span = req.traceSpan;
    if (!span || !opts.tracing) return handle(req, reply, done);
    // Login, callback and logout requests are followed through every await; the rest
    // (the proxied path) only while they decide synchronously.
    if (classifyRequest(req.url, false, false) === 'page') opts.tracing.scope(span, () => handle(req, reply, done));
    else void opts.tracing.scopeAsync(span, () => new Promise<void>((resolve) => {
      handle(req, reply, (err) => {
        resolve();
        done(err);
      });
      reply.raw.once('close', resolve);
    }));
  }

  /** Validates a form_post callback body before it goes on; completes it in authenticate mode. */
  async function checkFormCallback(req: FastifyRequest, reply: FastifyReply, client: ClientRecord, payload: NodeJS.ReadableStream): Promise<Readable> {
    const ctx = req.gate as SiteContext;
    const body = await readBody(payload, opts.bodyLimit);
    const v = body === undefined ? ({ ok: false, reason: 'too_long' } as const) : validateCallbackQuery(body);
    if (!v.ok) {
      void apply(req, reply, refuseCallback(env, ctx, v.reason, client.tenant));
      return Readable.from([]);
    }
    if (handlers) {
      await handlers.callback(ctx, reply, client, v.params);
      return Readable.from([]);
    }
    const replay = Readable.from([Buffer.from(body!, 'utf8')]);
    (replay as Readable & { receivedEncodedLength?: number }).receivedEncodedLength = Buffer.byteLength(body!);
    return replay;
  }

  app.decorateRequest('gate', null as unknown as RequestContext);
  app.addHook('onRequest', onRequest);
  app.addHook('preParsing', (req, reply, payload, done) => {
    const client = req.gate.formCallback;
    if (!client) return done(null, payload);
    flow(req, () => checkFormCallback(req, reply, client, payload)).then(
      (replay) => done(null, replay),
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
    );
  });
}

/** Registers the request pipeline; it must come before every other public route. */
export default fp(gate, { name: 'tenant-gate-gate', fastify: '5.x' });
