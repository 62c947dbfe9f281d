/**
 * Opens the tenant store named by `store.url`.
 *
 * - `sqlite:<path>` (relative to `cwd`) or `sqlite::memory:`: one process only;
 * - `postgres://` or `postgresql://`: shared by every replica. A `schema` query
 *   parameter picks the schema of the tables (default `public`); every other part of
 *   the URL goes to node-postgres as it is.
 */
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { PostgresTenantStore, type StoreLogger } from './postgres-store.js';
import { SqliteTenantStore } from './sqlite-store.js';
import type { TenantStore } from './types.js';

/** Builds (without opening) the store for a `store.url`; `init()` opens it. */
export async function createStore(url: string, opts: { cwd?: string; logger?: StoreLogger } = {}): Promise<TenantStore> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    return new SqliteTenantStore({ path: file === ':memory:' ? file : resolve(opts.cwd ?? process.cwd(), file) });
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { url: connection, schema } = splitPostgresUrl(url);
    return new PostgresTenantStore({ url: connection, ...(schema ? { schema } : {}), ...(opts.logger ? { logger: opts.logger } : {}) });
  }
  throw new ConfigError([{ path: '/store/url', message: 'this store is not supported yet' }]);
}

/** Takes the gateway's own `schema` parameter out of a PostgreSQL URL. */
export function splitPostgresUrl(url: string): { url: string; schema?: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError([{ path: '/store/url', message: 'not a valid PostgreSQL URL' }]);
  }
  const schema = parsed.searchParams.get('schema');
  if (schema === null) return { url };
  parsed.searchParams.delete('schema');
  return { url: parsed.toString(), schema };
}
