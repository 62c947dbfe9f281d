/**
 * Trace spans around the backends the request path calls: directory store queries
 * and session store calls.
 *
 * Rules: only used with tracing on (with it off, the backends are used as they are);
 * a span names the backend and the operation, never the looked-up value, a session
 * id or a single-use key.
 */
import type { TenantStore } from '../directory/types.js';
import type { SessionStore } from '../session/types.js';
import { SpanKind, type Tracing } from './tracing.js';

const STORE_QUERIES = new Set(['findTenant', 'findTenantByDomain', 'findTenantByHost', 'findClient']);
const SESSION_CALLS = new Set(['create', 'get', 'touch', 'destroy', 'consumeOnce']);

function traced<T extends object>(target: T, methods: ReadonlySet<string>, tracing: Tracing, prefix: string, system: string): T {
  const wrapped = new Map<string | symbol, unknown>();
  return new Proxy(target, {
    get(obj, prop) {
      const value = Reflect.get(obj, prop, obj) as unknown;
      if (typeof value !== 'function') return value;
      let fn = wrapped.get(prop);
      if (!fn) {
        const name = String(prop);
        fn = methods.has(name)
          ? (...args: unknown[]) => tracing.run(`${prefix} ${name}`, { 'db.system.name': system, 'db.operation.name': name }, () => (value as (...a: unknown[]) => Promise<unknown>).apply(obj, args), SpanKind.CLIENT)
          : (value as (...a: unknown[]) => unknown).bind(obj);
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
}

/** The directory store with a span around each lookup query. */
export function tracedStore(store: TenantStore, tracing: Tracing): TenantStore {
  return traced(store, STORE_QUERIES, tracing, 'directory', store.kind);
}

/** The session store with a span around each asynchronous call. */
export function tracedSessions(sessions: SessionStore, tracing: Tracing): SessionStore {
  return traced(sessions, SESSION_CALLS, tracing, 'sessions', sessions.kind);
}
