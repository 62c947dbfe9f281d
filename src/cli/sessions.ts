/**
 * `tenant-gate sessions summary|revoke`: the admin API's session endpoints against
 * the configured Redis session store.
 *
 * Rules: only a shared (Redis) store can be reached from outside the server; with
 * the in-memory store the sessions live inside the server process, and the command
 * says to use the admin API instead (exit 2). Output is the endpoint's JSON data.
 */
import type { Config } from '../config/schema.js';
import { SessionsAdmin } from '../admin/sessions-admin.js';
import { GatewayError } from '../errors.js';
import { RedisSessionStore } from '../session/redis-store.js';

/** What the command was given. */
export interface SessionsCommand {
  action: string | undefined;
  company?: string | undefined;
  user?: string | undefined;
  all?: boolean | undefined;
}

/** Runs `sessions <action>`; resolves to the exit code. */
export async function sessionsCommand(config: Config, cmd: SessionsCommand, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  if (cmd.action !== 'summary' && cmd.action !== 'revoke') {
    err(`sessions: unknown subcommand ${cmd.action ?? ''} (summary | revoke)\n`);
    return 2;
  }
  if (!cmd.company) {
    err(`sessions ${cmd.action}: --company is required\n`);
    return 2;
  }
  if (cmd.action === 'revoke' && (cmd.user === undefined) === (cmd.all !== true)) {
    err('sessions revoke: give exactly one of --user USER or --all\n');
    return 2;
  }
  if (config.mode !== 'authenticate' || !config.redis.url) {
    err(
      config.mode !== 'authenticate'
        ? 'sessions: the gateway keeps no sessions in route mode\n'
        : 'sessions: sessions are kept in the server process (no redis.url): use the admin API (sso.get_sessions_summary, sso.revoke_sessions)\n',
    );
    return 2;
  }
  const store = new RedisSessionStore({ url: config.redis.url, keyPrefix: config.redis.keyPrefix });
  try {
    const admin = new SessionsAdmin({ sessions: store, log: { info: (obj) => err(`${JSON.stringify(obj)}\n`) } });
    const data = cmd.action === 'summary' ? await admin.summary(cmd.company) : await admin.revoke({ company: cmd.company, ...(cmd.user !== undefined ? { user: cmd.user } : { all: true }) });
    out(`${JSON.stringify(data)}\n`);
    return 0;
  } catch (e) {
    err(`sessions ${cmd.action}: ${e instanceof GatewayError ? e.message : e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    await store.close();
  }
}
