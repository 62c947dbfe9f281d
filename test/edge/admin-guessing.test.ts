import t from 'tap';
import { AuthThrottle } from '../../src/admin/basic-auth.js';
import { clientKey } from '../../src/net/client-key.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { ADMIN_KEY, ADMIN_SECRET, adminCall, startGateway } from '../helpers/gateway.js';

t.test('after the lockout starts, 500 parallel wrong guesses from one address: at most 10 checked per minute', async (t) => {
  let now = 1_000_000;
  const checks: number[] = [];
  const metrics = createMetrics({ processMetrics: false });
  const throttle = new AuthThrottle({
    metrics: metrics.adminAuth,
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
  });
  const counted = throttle.run.bind(throttle);
  throttle.run = (client, check, ok) =>
    counted(client, () => {
      checks.push(now);
      return check();
    }, ok);
  const { adminUrl } = await startGateway(t, {}, { deps: { metrics, adminThrottle: throttle } });
  const guess = (i: number) => adminCall(adminUrl, 'system.get_company_sso_config', { company: 'x' }, `${ADMIN_KEY}:wrong-${i}`);

  for (let i = 0; i < 10; i++) t.equal((await guess(i)).status, 401, `failure ${i + 1} is checked`);
  const lockoutStarted = now;
  t.equal(checks.length, 10);
  const text = await metrics.registry.metrics();
  t.match(text, /^tenant_gate_admin_lockouts_total 1$/m, 'the lockout is counted');
  t.match(text, /^tenant_gate_admin_locked_addresses 1$/m, 'and the locked address is visible');

  const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => guess(100 + i)));
  const inFirstMinute = checks.filter((at) => at >= lockoutStarted && at < lockoutStarted + 60_000).length;
  t.ok(checks.length - 10 <= 10 && inFirstMinute <= 10, `at most 10 checks in the minute after the lockout (${checks.length - 10})`);
  t.ok(answers.every((a) => a.status === 429 || a.status === 401), 'every guess is refused');
  t.ok(answers.filter((a) => a.status === 429).length >= 490, 'refused without a check: 429');
  const right = await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'x' }, `${ADMIN_KEY}:${ADMIN_SECRET}`);
  t.equal(right.status, 429, 'while locked out, even the right credentials are not checked');

  now += 15 * 60_000 + 1;
  t.match(await metrics.registry.metrics(), /^tenant_gate_admin_locked_addresses 0$/m, 'the lockout ends');
  const after = await adminCall(adminUrl, 'system.get_company_sso_config', { company: 'x' }, `${ADMIN_KEY}:${ADMIN_SECRET}`);
  t.equal(after.status, 404, 'after the lockout the right credentials work again');
});

t.test('one check at a time per address, and the wait doubles', async (t) => {
  let now = 0;
  let running = 0;
  let most = 0;
  const waits: number[] = [];
  const throttle = new AuthThrottle({
    lockoutFailures: 1000,
    now: () => now,
    sleep: async (ms) => {
      waits.push(ms);
      await new Promise((r) => setTimeout(r, 1));
      now += ms;
    },
  });
  const results = await Promise.all(
    Array.from({ length: 12 }, () =>
      throttle.run('10.0.0.1', () => {
        running++;
        most = Math.max(most, running);
        running--;
        return false;
      }, (r) => r),
    ),
  );
  t.equal(most, 1, 'never two checks at once');
  t.equal(results.filter((r) => r.checked).length, 12);
  t.same(waits, [100, 200, 400, 800, 1600, 3000, 3000], 'free failures, then 100 ms doubling up to the cap');
});

t.test('clients are keyed by IPv4 address and IPv6 /64', async (t) => {
  t.equal(clientKey('192.0.2.7'), '192.0.2.7');
  t.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  t.equal(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:2:ffff:eeee:dddd:cccc'), 'one /64 is one client');
  t.not(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'), 'another /64 is another');
});
