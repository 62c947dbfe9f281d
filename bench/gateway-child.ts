/**
 * Entry of a gateway process under test: `buildApp` on the configuration in the job,
 * both listeners on 127.0.0.1 ports chosen by the system.
 *
 * With `countingStore`, the tenant store is wrapped: every call is counted by method
 * and every `find*` answer is held back `delayMs`, so concurrent misses overlap.
 */
import type { TenantStore } from '../src/directory/types.js';
import { runChild } from './child-process.js';

/**
 * The gateway as it ships: the JavaScript that `npm run build` compiles into dist/
 * (`npm run bench` builds first), not the TypeScript sources through tsx, whose
 * transform adds work of its own (a naming helper around every closure).
 */
const shipped = <T>(module: string): Promise<T> => import(new URL(`../dist/${module}`, import.meta.url).href) as Promise<T>;
const [{ buildApp }, { loadConfig }, { createStore }] = await Promise.all([
  shipped<typeof import('../src/app.js')>('app.js'),
  shipped<typeof import('../src/config/load.js')>('config/load.js'),
  shipped<typeof import('../src/directory/open-store.js')>('directory/open-store.js'),
]);

/** What the orchestrator asks of a gateway process. */
export interface GatewayJob {
  /** Configuration object, as a YAML file would give it. */
  config: Record<string, unknown>;
  countingStore?: { delayMs: number };
  maxLifetimeMs?: number;
}

/** Store calls by method name. */
export type StoreCalls = Record<string, number>;

function countingStore(inner: TenantStore, delayMs: number): { store: TenantStore; calls: StoreCalls } {
  const calls: StoreCalls = {};
  const store = new Proxy(inner, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        calls[prop] = (calls[prop] ?? 0) + 1;
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!prop.startsWith('find') || delayMs <= 0) return result;
        return Promise.resolve(result).then((v) => new Promise((resolve) => setTimeout(() => resolve(v), delayMs)));
      };
    },
  });
  return { store, calls };
}

runChild<GatewayJob>(async (job) => {
  const config = loadConfig({ object: job.config, env: {} });
  let calls: StoreCalls | undefined;
  let store: TenantStore | undefined;
  if (job.countingStore) {
    const counted = countingStore(await createStore(config.store.url), job.countingStore.delayMs);
    store = counted.store;
    calls = counted.calls;
  }
  const gateway = await buildApp(config, store ? { store } : {});
  const addresses = await gateway.listen();
  return {
    info: { port: addresses.public.port, adminPort: addresses.admin.port },
    stats: () => ({ storeCalls: { ...calls } }),
    close: () => gateway.close(),
  };
});
