/**
 * `npm run demo`: the whole product on loopback in one command, no internet, no
 * Docker. Starts the demo stack, prints what to open and stops everything (and
 * removes its temporary folder) on Ctrl-C, SIGTERM or after `--exit-after` seconds.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { prometheusBinary, startDemoPrometheus, type DemoPrometheus } from './observe.js';
import { DEMO_ADMIN, startDemoStack, type DemoStack } from './stack.js';

const USAGE = `usage: npm run demo -- [options]

  --port N          public port (default 8080)
  --admin-port N    admin API port (default 8008)
  --exit-after S    stop by itself after S seconds
  --log-level L     gateway log level on stderr: fatal|error|warn|info|debug (default warn)
  --observe         also start Prometheus (Debian package prometheus) scraping the gateway
  --prometheus-port N  its port (default 9090)
  -h, --help        this help`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function portArg(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) fail(`--${name} must be a port number (0 picks a free one)`);
  return n;
}

function pad(s: string, n: number): string {
  return s.length >= n ? `${s} ` : s + ' '.repeat(n - s.length);
}

/** The text printed once the stack is up. */
function instructions(stack: DemoStack): string {
  const base = stack.publicUrl;
  const acme = stack.tenants.find((t) => t.id === 'acme')!;
  const globex = stack.tenants.find((t) => t.id === 'globex')!;
  const auth = `${DEMO_ADMIN.key}:${DEMO_ADMIN.secret}`;
  const curl = (endpoint: string, body: string) =>
    `  curl -s -u ${auth} ${stack.adminUrl}/${endpoint} -H 'Content-Type: application/json' -d '${body}'`;
  const users = stack.tenants
    .flatMap((t) => t.users.map((u) => `  ${pad(u.login, 9)}${pad(u.email, 19)}${pad(t.id, 8)}${u.demonstrates}`))
    .join('\n');
  return `
tenant-gate demo: authenticate mode, two tenants, everything on loopback.

Open in a browser (Chrome, Edge and Firefox send *.localhost to this machine; with
another browser start from ${base}/login):
  ${acme.vanityOrigin}/
      ${acme.displayName}'s vanity host: straight to its identity provider, back with your identity
  ${globex.vanityOrigin}/
      ${globex.displayName} has two providers: a chooser first
  ${base}/login
      email discovery: alice@acme.com goes to acme, gina@globex.com to globex,
      anything else gets the same neutral answer
  ${base}/login/nope
      an organisation that does not exist (404); http://nope.localhost:${stack.port}/ is an unknown host (421)

Demo users (the identity providers accept any password):
  ${pad('login', 9)}${pad('email', 19)}${pad('tenant', 8)}shows
${users}
  Sign out with the link on the application's page; acme also signs you out at its provider.

Sign-out at the provider ends the gateway session (OpenID Connect Back-Channel Logout):
  1. sign in at ${acme.vanityOrigin}/
  2. in the same browser, sign out at acme's provider: ${acme.endSessionUrl}
  3. reload ${acme.vanityOrigin}/: the gateway asks you to sign in again.
  The gateway logs audit=backchannel_logout, and counts it:
  curl -s ${stack.adminUrl}/metrics | grep -E 'tenant_gate_(channel_logouts|sessions_ended)'

Without a browser (curl sends *.localhost to loopback itself; or give a Host header):
  curl -si ${acme.vanityOrigin}/projects -H 'Accept: text/html'
  curl -si http://127.0.0.1:${stack.port}/login/acme -H 'Host: acme.localhost:${stack.port}'

Admin API (ClearML apiserver shape, HTTP Basic ${auth}):
${curl('system.get_company_sso_config', '{"company":"acme-company"}')}
${curl('sso.get_all_provider_configurations', '{}')}
${curl('system.update_company_sso_config', '{"company":"acme-company","sso":{"domains":["acme.com","acme.example"]}}')}
${curl('sso.get_sessions_summary', '{"company":"acme-company"}')}
${curl('sso.revoke_sessions', '{"company":"acme-company","user":"alice@acme.com"}')}
  curl -s ${stack.adminUrl}/metrics | grep tenant_gate_logins

Store: ${stack.dir} (removed on exit). Gateway logs go to stderr.
Press Ctrl-C to stop (or kill ${process.pid}).
`;
}

/** What `--observe` adds: where to look at metrics, rules and alerts, and how to see traces. */
function observeInstructions(stack: DemoStack, promUrl: string): string {
  const q = (expr: string) => `${promUrl}/graph?g0.expr=${encodeURIComponent(expr)}&g0.tab=0`;
  return `
Observe (Prometheus scrapes ${stack.adminUrl}/metrics every 5 s):
  ${promUrl}/targets     the gateway as a scrape target
  ${promUrl}/rules       recording and alerting rules from deploy/prometheus/
  ${promUrl}/alerts      alerts (sign in a few times, try a wrong admin password)
  ${q('tenant_gate:request_duration_seconds:p99_5m')}
  ${q('sum by (tenant, outcome) (rate(tenant_gate_logins_total[1m]))')}
  Dashboard: import deploy/grafana/tenant-gate.json into Grafana with this Prometheus as its data source.
  Traces: start the demo with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (an OTLP/HTTP
  collector, e.g. Jaeger) to export a span per request with its store, provider and upstream calls.
`;
}

async function run(): Promise<void> {
  // Output piped into a pager that has quit must not stop the cleanup.
  process.stdout.on('error', () => {});
  let args;
  try {
    args = parseArgs({
      options: {
        port: { type: 'string' },
        'admin-port': { type: 'string' },
        'exit-after': { type: 'string' },
        'log-level': { type: 'string' },
        observe: { type: 'boolean' },
        'prometheus-port': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }).values;
  } catch (err) {
    fail((err as Error).message);
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const port = portArg(args.port, 'port', 8080);
  const adminPort = portArg(args['admin-port'], 'admin-port', 8008);
  let exitAfter: number | undefined;
  if (args['exit-after'] !== undefined) {
    exitAfter = Number(args['exit-after']);
    if (!Number.isFinite(exitAfter) || exitAfter <= 0) fail('--exit-after must be a positive number of seconds');
  }
  const logLevel = args['log-level'] ?? 'warn';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) fail('--log-level is not a known level');

  let stack: DemoStack;
  try {
    stack = await startDemoStack({ port, adminPort, logLevel });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = code === 'EADDRINUSE' ? `a port is already in use (${(err as Error).message}); try --port and --admin-port` : (err as Error).message;
    process.stderr.write(`demo: cannot start: ${message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(instructions(stack));
  let prometheus: DemoPrometheus | undefined;
  if (args.observe) {
    const binary = prometheusBinary();
    if (!binary) process.stdout.write('\n--observe: prometheus is not installed (apt-get install prometheus); metrics stay at the admin /metrics.\n');
    else {
      try {
        prometheus = await startDemoPrometheus({ binary, adminHost: new URL(stack.adminUrl).host, port: portArg(args['prometheus-port'], 'prometheus-port', 9090), dir: stack.dir });
        process.stdout.write(observeInstructions(stack, prometheus.url));
      } catch (err) {
        process.stderr.write(`demo: prometheus could not start: ${(err as Error).message}\n`);
      }
    }
  }

  let stopping = false;
  const timer = exitAfter !== undefined ? setTimeout(() => stop(`--exit-after ${exitAfter}`), exitAfter * 1000) : undefined;
  /** Exits at once, still removing the temporary folder. */
  function exitNow(message: string): never {
    process.stderr.write(`demo: ${message}\n`);
    prometheus?.kill();
    rmSync(stack.dir, { recursive: true, force: true });
    process.exit(1);
  }
  function stop(why: string): void {
    if (stopping) exitNow('stopping now');
    stopping = true;
    if (timer) clearTimeout(timer);
    process.stdout.write(`\nStopping (${why})...\n`);
    // Browsers keep connections open; never wait for them for long.
    setTimeout(() => exitNow('shutdown took too long, exiting'), 5000).unref();
    Promise.all([stack.close(), prometheus?.close()]).then(
      () => {
        process.stdout.write('Stopped; temporary files removed.\n');
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      },
      (err: unknown) => {
        process.stderr.write(`demo: error while stopping: ${(err as Error).message}\n`);
        process.exitCode = 1;
      },
    );
  }
  const onSignal = (signal: NodeJS.Signals) => stop(signal);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A crash still stops the servers and removes the temporary folder.
  const onCrash = (err: unknown) => {
    process.stderr.write(`demo: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
    stop('error');
  };
  process.once('uncaughtException', onCrash);
  process.once('unhandledRejection', onCrash);
}

await run();
