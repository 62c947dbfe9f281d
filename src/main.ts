/**
 * The `tenant-gate` command: serve | check-config.
 */
import { parseArgs } from 'node:util';
import { buildApp, type Gateway } from './app.js';
import { loadConfig, redactConfig } from './config/load.js';
import { ConfigError } from './errors.js';

const USAGE = `usage: tenant-gate <command> [--config FILE]

commands:
  serve          serve the public and admin listeners (default)
  check-config   validate the configuration and exit (non-zero with every error)

--config FILE defaults to $TENANT_GATE_CONFIG; environment overrides apply
(TENANT_GATE__<path>__<key>=value and the ClearML sso names).`;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

function load(file: string | undefined, io: Io) {
  try {
    return loadConfig({ ...(file !== undefined ? { file } : {}), env: io.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${err.message}\n`);
      return undefined;
    }
    throw err;
  }
}

async function serve(file: string | undefined, io: Io): Promise<number> {
  const config = load(file, io);
  if (!config) return 2;
  let gateway: Gateway;
  try {
    gateway = await buildApp(config);
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
  });
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, print: { type: 'boolean' } },
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
  if (rest.length > 0) {
    io.err(`unexpected arguments: ${rest.join(' ')}\n${USAGE}\n`);
    return 2;
  }
  switch (command) {
    case 'serve':
      return serve(parsed.values.config, io);
    case 'check-config': {
      const config = load(parsed.values.config, io);
      if (!config) return 2;
      io.out(parsed.values.print ? `${JSON.stringify(redactConfig(config), null, 2)}\n` : 'configuration is valid\n');
      return 0;
    }
    default:
      io.err(`unknown command: ${command}\n${USAGE}\n`);
      return 2;
  }
}
