/**
 * The shape of a decision step: built once per listener from the environment, then
 * asked for every request in table order. A step returns a decision to stop there, or
 * undefined to let the next step decide; it answers synchronously whenever it needs
 * no I/O (cache hits), so the common request is decided in one tick.
 */
import type { RequestContext, SiteContext } from '../context.js';
import type { Decision } from '../decision.js';
import type { PipelineEnv } from '../env.js';

/** A step's answer: a decision, undefined to go on, or a promise of either. */
export type StepResult = Decision | undefined | Promise<Decision | undefined>;

/** A step that runs after the Host is resolved. */
export type SiteStep = (ctx: SiteContext) => StepResult;

/** A step that runs before the Host is resolved. */
export type RequestStep = (ctx: RequestContext) => StepResult;

/** Builds a step from the listener's environment. */
export type StepFactory<S> = (env: PipelineEnv) => S;
