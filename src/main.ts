/**
 * The `tenant-gate` command: serve | check-config.
 */
import cluster from 'node:cluster';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { DirectoryAdmin, providerRulesOf } from './admin/directory-admin.js';
import { baseDomainOf, baseHostsOf, buildApp, type Gateway } from './app.js';
import { describeTenant } from './cli/describe.js';
import { rotateSigningKey } from './assertion/keys.js';
import { sessionsCommand } from './cli/sessions.js';
import { checkDirectoryFile, exportDirectory, importDirectory, preflightImport, renderDirectory } from './cli/directory-file.js';
import { loadConfig, redactConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { createStore, splitPostgresUrl } from './directory/open-store.js';
import { PostgresInvalidationBus } from './directory/postgres-invalidation-bus.js';
import type { TenantStore } from './directory/types.js';
import { runPrimary } from './cluster.js';
import { ClusterInvalidationBus } from './directory/cluster-invalidation-bus.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { checkSecrets } from './config/secrets-check.js';
import { createLogger } from './logger.js';

const USAGE = `usage: tenant-gate <command> [--config FILE]

commands:
  serve                      serve the public and admin listeners (default)
  check-config [--print]     validate the configuration and exit (non-zero with every error)
  export [--format yaml|json] [--output FILE]
                             write the tenant directory (never any secret)
  import FILE [--dry-run]    load companies and providers from YAML or JSON
  tenants describe TENANT [--no-check]
                             what to register in the tenant's identity provider,
                             and a check of the provider against the directory
  keys rotate                new signing key for X-Auth-Request-Jwt; the previous one
                             stays published for assertion.rotationGraceSeconds
  sessions summary --company COMPANY
                             count the company's live sessions, by provider
  sessions revoke --company COMPANY (--user USER | --all)
                             end one user's sessions (subject or verified email) or all
                             of the company's, on every replica (needs redis.url; with
                             in-memory sessions use the admin API)

--config FILE defaults to $TENANT_GATE_CONFIG, then config/default.yaml; environment overrides apply
(TENANT_GATE__<path>__<key>=value and the ClearML sso names).`;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

/** config/default.yaml of this package: used when neither --config nor TENANT_GATE_CONFIG names a file. */
const DEFAULT_CONFIG = fileURLToPath(new URL('../config/default.yaml', import.meta.url));

/** Loads the configuration; with `secrets`, weak secrets stop a reachable admin listener and are warned about on loopback. */
function load(file: string | undefined, io: Io, secrets?: { warn: (problem: ConfigProblem) => void }) {
  try {
    const config = loadConfig({ file: file ?? io.env.TENANT_GATE_CONFIG ?? DEFAULT_CONFIG, env: io.env });
    if (secrets) for (const p of checkSecrets(config)) secrets.warn(p);
    return config;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${err.message}\n`);
      return undefined;
    }
    throw err;
  }
}

async function serve(file: string | undefined, io: Io): Promise<number> {
  const config = load(file, io, {
    warn: (p) => io.err(`tenant-gate: warning: ${p.path}: ${p.message} (accepted only because admin.host is a loopback address)\n`),
  });
  if (!config) return 2;
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config.workers, createLogger(config.log.level));
  let gateway: Gateway;
  try {
    gateway = await buildApp(config, cluster.isWorker && config.store.url.startsWith('sqlite:') ? { bus: new ClusterInvalidationBus() } : {});
  } catch (err) {
    io.err(`tenant-gate: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const addresses = await gateway.listen();
  gateway.logger.info(
    { mode: config.mode, public: addresses.public, admin: addresses.admin, store: gateway.store.kind },
    'tenant-gate listening',
  );
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      gateway.logger.info({ signal }, 'shutting down: finishing in-flight requests');
      gateway.close().then(
        () => resolve(0),
        (err: unknown) => {
          gateway.logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  }).then((code) => {
    if (cluster.isWorker) process.disconnect();
    return code;
  });
}

async function withStore<T>(config: Config, fn: (store: TenantStore) => Promise<T>): Promise<T> {
  const store = await createStore(config.store.url);
  await store.init();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function directoryCommand(
  command: string,
  args: string[],
  values: { config?: string | undefined; format?: string | undefined; output?: string | undefined; 'dry-run'?: boolean | undefined; 'no-check'?: boolean | undefined },
  io: Io,
): Promise<number> {
  const config = load(values.config, io);
  if (!config) return 2;
  try {
    if (command === 'export') {
      const format = values.format ?? (values.output?.endsWith('.json') ? 'json' : 'yaml');
      if (format !== 'yaml' && format !== 'json') {
        io.err('export: --format must be yaml or json\n');
        return 2;
      }
      const text = renderDirectory(await withStore(config, exportDirectory), format);
      if (values.output) writeFileSync(values.output, text, { mode: 0o600 });
      else io.out(text);
      return 0;
    }
    if (command === 'import') {
      let raw: unknown;
      try {
        raw = parseYaml(readFileSync(args[0]!, 'utf8'));
      } catch (err) {
        io.err(`import: cannot read ${args[0]}: ${(err as Error).message.split('\n')[0]}\n`);
        return 2;
      }
      return await withStore(config, async (store) => {
        const written: string[] = [];
        const admin = new DirectoryAdmin({ store, baseHosts: baseHostsOf(config), baseDomain: baseDomainOf(config), providerRules: providerRulesOf(config), onWrite: (keys) => written.push(...keys) });
        const checked = checkDirectoryFile(raw, admin);
        if (!checked.data) {
          for (const p of checked.problems) io.err(`  ${p.path}: ${p.message}\n`);
          io.err(`import: ${checked.problems.length} problem(s); nothing was written\n`);
          return 1;
        }
        const data = checked.data;
        const problems = await preflightImport(store, data);
        if (problems.length) {
          for (const p of problems) io.err(`  ${p.path}: ${p.message}\n`);
          io.err(`import: ${problems.length} conflict(s); nothing was written\n`);
          return 1;
        }
        if (values['dry-run']) {
          io.out(`import: ${data.companies.length} companies checked, nothing written (--dry-run)\n`);
          return 0;
        }
        const done = await importDirectory(admin, data);
        if (store.kind === 'postgres') {
          const { url, schema } = splitPostgresUrl(config.store.url);
          const bus = new PostgresInvalidationBus({ url, ...(schema ? { schema } : {}) });
          await bus.publish(written);
          await bus.close();
        }
        io.out(`import: ${done.companies} companies and ${done.providers} providers written\n`);
        return 0;
      });
    }
    if (command === 'keys') {
      if (args[0] !== 'rotate') {
        io.err(`keys: unknown subcommand ${args[0] ?? ''}\n${USAGE}\n`);
        return 2;
      }
      const kid = await withStore(config, (store) => rotateSigningKey(store, config.assertion.rotationGraceSeconds * 1000));
      io.out(`keys: ${kid} is the new signing key; every replica signs with it within ${config.assertion.keyRefreshSeconds} s, and the previous key stays published for ${config.assertion.rotationGraceSeconds} s\n`);
      return 0;
    }
    if (args[0] !== 'describe') {
      io.err(`tenants: unknown subcommand ${args[0] ?? ''}\n${USAGE}\n`);
      return 2;
    }
    return await withStore(config, (store) => describeTenant(config, store, args[1]!, io.out, { check: !values['no-check'] }));
  } catch (err) {
    io.err(`tenant-gate ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        print: { type: 'boolean' },
        format: { type: 'string' },
        output: { type: 'string', short: 'o' },
        'dry-run': { type: 'boolean' },
        'no-check': { type: 'boolean' },
        company: { type: 'string' },
        user: { type: 'string' },
        all: { type: 'boolean' },
      },
    });
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const [command = 'serve', ...rest] = parsed.positionals;
  if (parsed.values.help) {
    io.out(`${USAGE}\n`);
    return 0;
  }
  const expected: Record<string, number> = { serve: 0, 'check-config': 0, export: 0, import: 1, tenants: 2, keys: 1, sessions: 1 };
  if (expected[command] !== undefined && rest.length !== expected[command]) {
    io.err(`${command}: wrong number of arguments\n${USAGE}\n`);
    return 2;
  }
  switch (command) {
    case 'export':
    case 'import':
    case 'tenants':
    case 'keys':
      return directoryCommand(command, rest, parsed.values, io);
    case 'serve':
      return serve(parsed.values.config, io);
    case 'sessions': {
      const config = load(parsed.values.config, io);
      if (!config) return 2;
      const { company, user, all } = parsed.values;
      return sessionsCommand(config, { action: rest[0], company, user, all }, io.out, io.err);
    }
    case 'check-config': {
      const config = load(parsed.values.config, io, {
        warn: (p) => io.err(`warning: ${p.path}: ${p.message} (accepted only because admin.host is a loopback address)\n`),
      });
      if (!config) return 2;
      io.out(parsed.values.print ? `${JSON.stringify(redactConfig(config), null, 2)}\n` : 'configuration is valid\n');
      return 0;
    }
    default:
      io.err(`unknown command: ${command}\n${USAGE}\n`);
      return 2;
  }
}
