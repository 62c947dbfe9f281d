/**
 * Opens the tenant store named by `store.url`.
 */
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { SqliteTenantStore } from './sqlite-store.js';
import type { TenantStore } from './types.js';

/** Builds (without opening) the store for a `store.url`; `init()` opens it. */
export async function createStore(url: string, opts: { cwd?: string } = {}): Promise<TenantStore> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    return new SqliteTenantStore({ path: file === ':memory:' ? file : resolve(opts.cwd ?? process.cwd(), file) });
  }
  throw new ConfigError([{ path: '/store/url', message: 'this store is not supported yet' }]);
}
