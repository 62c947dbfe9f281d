import { randomBytes } from 'node:crypto';
import pg from 'pg';
import t from 'tap';
import { adminCall, startGateway, tempDir } from '../helpers/gateway.js';

type Test = import('tap').Test;
type Call = (endpoint: string, body: unknown) => ReturnType<typeof adminCall>;

/** One partial update per sso key: merged in parallel, every one must survive. */
function partialUpdates(i: number): Array<Record<string, unknown>> {
  return [
    { group_mapping: { [`idp-${i}`]: `Group ${i}` } },
    { admin_groups: [`admins-${i}`] },
    { groups: [`extra-${i}`] },
    { domains: [`company${i}.example`] },
    { hosts: [`sso.company${i}.example`] },
    { display_name: `Company ${i}` },
  ];
}

function expectedSso(i: number) {
  return {
    tenant: `tenant-${i}`,
    group_mapping: { [`idp-${i}`]: `Group ${i}` },
    admin_groups: [`admins-${i}`],
    groups: [`extra-${i}`],
    domains: [`company${i}.example`],
    hosts: [`sso.company${i}.example`],
    display_name: `Company ${i}`,
  };
}

/** Creates `n` companies, then merges every key of every company in parallel, spread over `calls`. */
async function parallelMerges(t: Test, calls: Call[], n: number, label: string) {
  for (let i = 0; i < n; i++) {
    const r = await calls[0]!('system.update_company_sso_config', { company: `c-${i}`, sso: { tenant: `tenant-${i}` } });
    t.equal(r.status, 200, `${label}: company ${i} created`);
  }
  const jobs = Array.from({ length: n }, (_, i) => partialUpdates(i).map((sso) => ({ company: `c-${i}`, sso }))).flat();
  const results = await Promise.all(jobs.map((body, k) => calls[k % calls.length]!('system.update_company_sso_config', body)));
  t.same([...new Set(results.map((r) => r.status))], [200], `${label}: ${jobs.length} parallel merges all answered 200`);
  const lost: string[] = [];
  for (let i = 0; i < n; i++) {
    const got = await calls[0]!('system.get_company_sso_config', { company: `c-${i}` });
    const want = expectedSso(i);
    for (const [key, value] of Object.entries(want)) {
      if (JSON.stringify(got.data.sso?.[key]) !== JSON.stringify(value)) lost.push(`c-${i}.${key}`);
    }
  }
  return lost;
}

/** Claims of one value by many companies at once: exactly one wins, every other gets 409 with the field's subcode. */
async function parallelClaims(t: Test, calls: Call[], label: string) {
  const n = 24;
  const claim = (field: string, value: unknown, subcode: number, make: (i: number) => [string, unknown]) =>
    Promise.all(Array.from({ length: n }, (_, i) => calls[i % calls.length]!(...make(i)))).then((rs) => {
      const ok = rs.filter((r) => r.status === 200).length;
      const conflicts = rs.filter((r) => r.status === 409 && r.meta.result_subcode === subcode).length;
      t.equal(ok, 1, `${label}: one ${field} claimed by ${n} companies at once: exactly one 200`);
      t.equal(conflicts, n - 1, `${label}: the other ${n - 1} get 409/${subcode}`);
      t.same(rs.filter((r) => r.status !== 200 && r.status !== 409).map((r) => r.status), [], `${label}: nothing else (${field})`);
      void value;
    });
  await claim('domain', 'shared.example', 2, (i) => ['system.update_company_sso_config', { company: `d-${i}`, sso: { tenant: `d-tenant-${i}`, domains: ['shared.example'] } }]);
  await claim('host', 'sso.shared.example', 3, (i) => ['system.update_company_sso_config', { company: `h-${i}`, sso: { tenant: `h-tenant-${i}`, hosts: ['sso.shared.example'] } }]);
  await claim('tenant', 'Contested', 1, (i) => ['system.update_company_sso_config', { company: `t-${i}`, sso: { tenant: i % 2 ? 'Contested' : 'contested' } }]);
  for (let i = 0; i < n; i++) await calls[0]!('system.update_company_sso_config', { company: `p-${i}`, sso: { tenant: `p-tenant-${i}` } });
  await claim('client_id', 'shared-client', 4, (i) => [
    'sso.save_provider_configuration',
    { provider: 'keycloak', company: `p-${i}`, configuration: { id: 'main', client_id: 'shared-client', issuer: 'https://kc.example.com/realms/p' } },
  ]);

  // The directory agrees with the answers: the winner owns the value.
  const all = await calls[0]!('sso.get_all_provider_configurations', {});
  const owners = (all.data.providers as Array<{ company: string; configuration: { client_id: string } }>).filter((p) => p.configuration.client_id === 'shared-client');
  t.equal(owners.length, 1, `${label}: one provider holds the client_id`);
}

t.test('one gateway: parallel merges lose nothing, parallel claims of one value have exactly one winner', async (t) => {
  const gw = await startGateway(t);
  const call: Call = (endpoint, body) => adminCall(gw.adminUrl, endpoint, body);
  const lost = await parallelMerges(t, [call], 10, 'one gateway');
  t.same(lost, [], 'every merged key survived');
  await parallelClaims(t, [call], 'one gateway');
});

const PG_URL = process.env.TENANT_GATE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

t.test('two replicas sharing PostgreSQL: parallel merges through both lose nothing; claims still have one winner', async (t) => {
  if (!(await postgresReachable())) {
    t.plan(0, `PostgreSQL not reachable at ${PG_URL}`);
    return;
  }
  const schema = `tg_faults_${randomBytes(5).toString('hex')}`;
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  t.teardown(async () => {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await admin.end();
  });
  const a = await startGateway(t, { store: { url } }, { dir: tempDir(t) });
  const b = await startGateway(t, { store: { url } }, { dir: tempDir(t) });
  const calls: Call[] = [(e, body) => adminCall(a.adminUrl, e, body), (e, body) => adminCall(b.adminUrl, e, body)];
  const lost = await parallelMerges(t, calls, 10, 'two replicas');
  t.same(lost, [], 'every merged key survived');
  await parallelClaims(t, calls, 'two replicas');
});
