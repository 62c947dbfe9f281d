import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { main } from '../../src/main.js';
import { startIdp } from '../helpers/idp.js';
import { tempDir } from '../helpers/gateway.js';

function io() {
  let out = '';
  let err = '';
  return { io: { out: (s: string) => void (out += s), err: (s: string) => void (err += s), env: {} }, out: () => out, err: () => err };
}

function writeConfig(dir: string, extra: Record<string, unknown> = {}): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    stringify({
      public: { url: 'https://ml.example.com' },
      admin: { credentials: [{ key: 'k', secret: 'secret-123' }] },
      upstreams: { webapp: 'http://127.0.0.1:3000' },
      tenancy: { baseDomain: 'ml.example.com' },
      store: { url: `sqlite:${join(dir, 'db.sqlite')}` },
      ...extra,
    }),
  );
  return file;
}

const directory = (issuer: string) => ({
  companies: [
    {
      company: 'c-acme',
      sso: { tenant: 'acme', group_mapping: { staff: 'Users' }, admin_groups: ['admins'], domains: ['ACME.com'], hosts: ['ml.acme.com'] },
      providers: [{ provider: 'keycloak', configuration: { id: 'kc', client_id: 'acme-web', client_secret: 'very-secret-value', issuer, logout_from_provider: true, group_enabled: true, claim_groups: 'ad_groups_trusted' } }],
    },
    { company: 'c-globex', sso: { tenant: 'globex', domains: ['globex.com'] } },
  ],
});

t.test('check-config: valid, and every error with its path', async (t) => {
  const dir = tempDir(t);
  const good = io();
  t.equal(await main(['check-config', '--config', writeConfig(dir)], good.io), 0);
  t.match(good.out(), /valid/);
  const printed = io();
  t.equal(await main(['check-config', '--print', '--config', writeConfig(dir)], printed.io), 0);
  t.notMatch(printed.out(), /secret-123/, 'secrets redacted');
  const bad = io();
  t.equal(await main(['check-config', '--config', writeConfig(dir, { mode: 'x', extra: 1, public: { port: -1 } })], bad.io), 2);
  t.match(bad.err(), /\/mode/);
  t.match(bad.err(), /\/extra: unknown key/);
  t.match(bad.err(), /\/public\/port/);
  const usage = io();
  t.equal(await main(['frobnicate'], usage.io), 2);
  t.match(usage.err(), /unknown command/);
});

t.test('import, export round trip; secrets never exported; bad files change nothing', async (t) => {
  const dir = tempDir(t);
  const config = writeConfig(dir);
  const file = join(dir, 'tenants.yaml');
  writeFileSync(file, stringify(directory('https://kc.acme.com/realms/acme')));
  const dry = io();
  t.equal(await main(['import', file, '--dry-run', '--config', config], dry.io), 0);
  const empty = io();
  await main(['export', '--config', config], empty.io);
  t.match(empty.out(), /companies: \[\]/, 'dry run wrote nothing');

  const imp = io();
  t.equal(await main(['import', file, '--config', config], imp.io), 0, imp.err());
  t.match(imp.out(), /2 companies and 1 providers/);
  const exp = io();
  t.equal(await main(['export', '--format', 'json', '--config', config], exp.io), 0);
  const data = JSON.parse(exp.out()) as { companies: Array<{ company: string; sso: { domains: string[] }; providers?: Array<{ configuration: Record<string, unknown> }> }> };
  t.same(data.companies.map((c) => c.company), ['c-acme', 'c-globex']);
  t.same(data.companies[0]!.sso.domains, ['acme.com'], 'normalised like the admin API does');
  t.equal(data.companies[0]!.providers![0]!.configuration.has_client_secret, true);
  t.notMatch(exp.out(), /very-secret-value/, 'no secret in the export');

  const out = join(dir, 'export.yaml');
  t.equal(await main(['export', '--output', out, '--config', config], io().io), 0);
  const dir2 = tempDir(t);
  const config2 = writeConfig(dir2);
  t.equal(await main(['import', out, '--config', config2], io().io), 0, 'an export imports into another store');
  const again = io();
  await main(['export', '--format', 'json', '--config', config2], again.io);
  const moved = JSON.parse(again.out()) as typeof data;
  t.equal(moved.companies[0]!.providers![0]!.configuration.has_client_secret, false, 'secrets do not travel: they are supplied again on import');
  moved.companies[0]!.providers![0]!.configuration.has_client_secret = true;
  t.same(moved, data, 'otherwise the second store holds the same directory');
  t.match(readFileSync(out, 'utf8'), /has_client_secret: true/);

  const conflict = join(dir, 'conflict.yaml');
  writeFileSync(conflict, stringify({ companies: [{ company: 'c-new', sso: { tenant: 'new', domains: ['fresh.com'] } }, { company: 'c-other', sso: { tenant: 'other', domains: ['acme.com'] } }] }));
  const refused = io();
  t.equal(await main(['import', conflict, '--config', config], refused.io), 1);
  t.match(refused.err(), /domain acme\.com: would belong to both c-acme and c-other/);
  const invalid = join(dir, 'invalid.yaml');
  writeFileSync(invalid, stringify({ companies: [{ company: 'c-new', sso: { tenant: 'bad tenant!' } }, { company: 'c-x', sso: { tenant: 'x', bogus: 1 } }] }));
  const bad = io();
  t.equal(await main(['import', invalid, '--config', config], bad.io), 1);
  t.match(bad.err(), /companies\.0 \(c-new\)/);
  t.match(bad.err(), /companies\.1 \(c-x\).*bogus/);
  const after = io();
  await main(['export', '--format', 'json', '--config', config], after.io);
  t.same(JSON.parse(after.out()), data, 'refused imports changed nothing');
  t.equal(await main(['import', join(dir, 'missing.yaml'), '--config', config], io().io), 2);
});

t.test('tenants describe: what to register, and a check of the provider', async (t) => {
  const idp = await startIdp({ clients: [{ client_id: 'acme-web', client_secret: 'very-secret-value', redirect_uris: ['https://acme.ml.example.com/callback_acme-web'] }], users: {} });
  t.teardown(() => idp.close());
  const dir = tempDir(t);
  const config = writeConfig(dir, { oidc: { insecureAllowPrivateProviders: true } });
  const file = join(dir, 'tenants.yaml');
  writeFileSync(file, stringify(directory(idp.issuer)));
  await main(['import', file, '--config', config], io().io);
  const d = io();
  t.equal(await main(['tenants', 'describe', 'ACME', '--config', config], d.io), 0, d.out());
  const text = d.out();
  for (const uri of [
    'https://acme.ml.example.com/callback_acme-web',
    'https://ml.acme.com/callback_acme-web',
    'https://ml.example.com/callback_acme-web',
    'https://acme.ml.example.com/login/acme',
    'https://ml.example.com/login',
  ]) t.match(text, uri);
  t.match(text, /discovery: ok/);
  t.match(text, /client authentication: client_secret_basic \(from discovery\)/);
  t.match(text, /client credentials: accepted/);
  t.notMatch(text, /very-secret-value/, 'the secret is never printed');
  t.match(text, /all checks passed/);
  t.match(text, /Email: email is forwarded only when the ID token says email_verified: true/, 'the email policy is explained');
  t.match(text, /needs trust_unverified_email: true/);

  const wrong = directory(idp.issuer);
  wrong.companies[0]!.providers![0]!.configuration.client_secret = 'not-the-secret';
  writeFileSync(file, stringify(wrong));
  await main(['import', file, '--config', config], io().io);
  const w = io();
  t.equal(await main(['tenants', 'describe', 'acme', '--config', config], w.io), 1);
  t.match(w.out(), /client credentials: refused by the provider \(invalid_client\)/);

  const strictConfig = writeConfig(tempDir(t));
  const strictFile = join(dir, 'strict.yaml');
  writeFileSync(strictFile, stringify(directory(idp.issuer)));
  const refusedImport = io();
  t.equal(await main(['import', strictFile, '--config', strictConfig], refusedImport.io), 1, 'a loopback provider needs oidc.insecureAllowPrivateProviders');
  t.match(refusedImport.err(), /configuration\.issuer .*https is required/);

  writeFileSync(file, stringify({ companies: [{ company: 'c-acme', providers: [{ provider: 'keycloak', configuration: { id: 'kc', client_id: 'acme-web', issuer: idp.issuer, token_endpoint: 'http://127.0.0.1:1/wrong', trust_unverified_email: true } }] }] }));
  await main(['import', file, '--config', config], io().io);
  const m = io();
  t.equal(await main(['tenants', 'describe', 'acme', '--config', config], m.io), 1);
  t.match(m.out(), /token_endpoint: stored http:\/\/127\.0\.0\.1:1\/wrong but the provider announces/);
  t.match(m.out(), /Email: email is trusted without email_verified \(trust_unverified_email: true\)/, 'a trusted provider is called out');
  const rotated = io();
  t.equal(await main(['keys', 'rotate', '--config', config], rotated.io), 0, rotated.err());
  t.match(rotated.out(), /keys: \S+ is the new signing key/);
  const again = io();
  await main(['keys', 'rotate', '--config', config], again.io);
  t.not(again.out(), rotated.out(), 'each rotation makes a new key');
  t.equal(await main(['keys', 'list', '--config', config], io().io), 2, 'an unknown keys subcommand is a usage error');
  const unknown = io();
  t.equal(await main(['tenants', 'describe', 'nobody', '--config', config], unknown.io), 1);
  t.match(unknown.out(), /no tenant "nobody"/);
});

t.test('tenants describe in authenticate mode: the logout URIs to register', async (t) => {
  const idp = await startIdp({ clients: [{ client_id: 'acme-web', client_secret: 'x', redirect_uris: ['https://acme.ml.example.com/callback_acme-web'] }], users: {} });
  t.teardown(() => idp.close());
  const dir = tempDir(t);
  const config = writeConfig(dir, { mode: 'authenticate', session: { secret: 'a-session-secret-of-at-least-32-characters' }, oidc: { insecureAllowPrivateProviders: true } });
  const file = join(dir, 'tenants.yaml');
  const data = directory(idp.issuer);
  (data.companies[0]!.providers![0]!.configuration as Record<string, unknown>).frontchannel_logout = true;
  writeFileSync(file, stringify(data));
  t.equal(await main(['import', file, '--config', config], io().io), 0);
  const d = io();
  t.equal(await main(['tenants', 'describe', 'acme', '--config', config, '--no-check'], d.io), 0, d.out());
  for (const uri of [
    'https://acme.ml.example.com/backchannel-logout_acme-web',
    'https://ml.acme.com/backchannel-logout_acme-web',
    'https://ml.example.com/backchannel-logout_acme-web',
    'https://acme.ml.example.com/frontchannel-logout_acme-web',
  ]) t.match(d.out(), uri);
});

t.test('sessions: with in-memory sessions the CLI points to the admin API', async (t) => {
  const dir = tempDir(t);
  const config = writeConfig(dir, { mode: 'authenticate', session: { secret: 'a-session-secret-of-at-least-32-characters' } });
  const r = io();
  t.equal(await main(['sessions', 'revoke', '--company', 'c-acme', '--all', '--config', config], r.io), 2);
  t.match(r.err(), /use the admin API/);
  const bad = io();
  t.equal(await main(['sessions', 'revoke', '--company', 'c-acme', '--config', config], bad.io), 2, 'neither --user nor --all');
  t.match(bad.err(), /exactly one of --user USER or --all/);
});
