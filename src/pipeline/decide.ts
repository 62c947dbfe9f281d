/**
 * `decide(request)`: every decision of the public listener, as one ordered table.
 *
 * | step          | reads                                  | decides                                         |
 * |---------------|----------------------------------------|-------------------------------------------------|
 * | probe         | method, path                           | probes and forward-auth endpoints, any Host     |
 * | resolve host  | Host, directory                        | 400 bad Host, 421 unknown Host, 503 store down  |
 * | api prefix    | path after `/api`                      | 404 for gateway paths under `/api`              |
 * | callback      | path, query, client, host's tenant     | 400 refusal; complete or pass a callback        |
 * | tenant login  | path, tenant, directory                | `/login` → tenant login; 404; start a login     |
 * | logout        | path, method (authenticate mode)       | end the session; provider logout routes answer  |
 * | address bar   | navigation, query                      | 303 without unsafe redirect parameters          |
 * | session       | session or webapp cookie, navigation   | pass with identity; 302 to login; 401           |
 * | pass          | query                                  | pass on, unsafe `redirect` dropped              |
 *
 * The table is the documentation: docs/architecture.md repeats it. A step returns a
 * decision to stop, or undefined to let the next one decide; steps answer in the same
 * tick when they need no I/O, so a request on a cached tenant with an in-process
 * session is decided synchronously.
 */
import { createContext, type DescribedRequest, type RequestContext, type Site, type SiteContext } from './context.js';
import { isPromise } from '../is-promise.js';
import type { Decision } from './decision.js';
import type { PipelineEnv } from './env.js';
import { addressBar } from './steps/address-bar.js';
import { apiPrefix } from './steps/api-prefix.js';
import { callback } from './steps/callback.js';
import { logout } from './steps/logout.js';
import { pass } from './steps/pass.js';
import { probe } from './steps/probe.js';
import { resolveHost } from './steps/resolve-host.js';
import { session } from './steps/session.js';
import type { RequestStep, SiteStep, StepFactory, StepResult } from './steps/step.js';
import { tenantLogin } from './steps/tenant-login.js';

/** Steps before the Host is resolved. */
const BEFORE_HOST: ReadonlyArray<readonly [string, StepFactory<RequestStep>]> = [['probe', probe]];

/** Steps after the Host is resolved, in order. The last one always decides. */
const SITE_STEPS: ReadonlyArray<readonly [string, StepFactory<SiteStep>]> = [
  ['api prefix', apiPrefix],
  ['callback', callback],
  ['tenant login', tenantLogin],
  ['logout', logout],
  ['address bar', addressBar],
  ['session', session],
  ['pass', pass],
];

/** The decision function of one listener. */
export interface Decider {
  /** Decides for a context built by {@link createContext}; sets `ctx.site` once the Host is resolved. */
  decideContext(ctx: RequestContext): Decision | Promise<Decision>;
  /** Decides for a described request (forward-auth, tests): builds the context first. */
  decide(req: DescribedRequest): Promise<{ ctx: RequestContext; decision: Decision }>;
}

function decided(ctx: RequestContext, step: string, decision: Decision): Decision {
  ctx.step = step;
  return decision;
}

/** Builds the steps of a listener once and returns its decision function. */
export function createDecider(env: PipelineEnv): Decider {
  const before = BEFORE_HOST.map(([name, make]) => [name, make(env)] as const);
  const resolver = resolveHost(env);
  const steps = SITE_STEPS.map(([name, make]) => [name, make(env)] as const);

  function runSite(ctx: SiteContext, from: number): Decision | Promise<Decision> {
    for (let i = from; i < steps.length; i++) {
      const [name, step] = steps[i]!;
      const out: StepResult = step(ctx);
      if (out === undefined) continue;
      if (isPromise<Decision | undefined>(out)) return out.then((d) => (d === undefined ? runSite(ctx, i + 1) : decided(ctx, name, d)));
      return decided(ctx, name, out);
    }
    throw new Error('the last step of the pipeline must decide');
  }

  function settle(ctx: RequestContext, site: Site | Decision): Decision | Promise<Decision> {
    if ('kind' in site) return decided(ctx, 'resolve host', site);
    ctx.site = site;
    return runSite(ctx as SiteContext, 0);
  }

  function decideContext(ctx: RequestContext): Decision | Promise<Decision> {
    for (const [name, step] of before) {
      const out = step(ctx);
      if (out === undefined) continue;
      if (isPromise(out)) throw new Error(`step ${name} must decide synchronously`);
      return decided(ctx, name, out);
    }
    const site = resolver(ctx);
    return isPromise<Site | Decision>(site) ? site.then((s) => settle(ctx, s)) : settle(ctx, site);
  }

  return {
    decideContext,
    async decide(req) {
      const ctx = createContext(req, env.apiPrefix);
      return { ctx, decision: await decideContext(ctx) };
    },
  };
}
