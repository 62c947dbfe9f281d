/**
 * Who the user is upstream: the subject and issuer always, the email only when the
 * identity provider vouches for it (or the operator does, per provider).
 */
import t from 'tap';
import { twoTenants } from '../helpers/two-tenants.js';

t.test('a second account whose unverified email copies alice\'s is not alice upstream', async (t) => {
  const s = await twoTenants(t);
  const alice = await s.login('alice');
  t.equal(alice.callback?.status, 302, 'alice logs in');
  await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json' } }, alice.browser);
  const real = s.upstream.seen.at(-1)!.headers;
  t.equal(real['x-auth-request-user'], 'alice@acme.com', 'the real alice: her verified email');
  t.equal(real['x-auth-request-subject'], 'alice', 'her subject');
  t.equal(real['x-auth-request-issuer'], s.acmeIdp.issuer, 'her issuer');

  const evil = await s.login('evil');
  t.equal(evil.callback?.status, 302, 'the other account logs in');
  await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json' } }, evil.browser);
  const seen = s.upstream.seen.at(-1)!.headers;
  t.equal(seen['x-auth-request-user'], 'evil', 'is known by its subject');
  t.equal(seen['x-auth-request-email'], '', 'with no email');
  t.equal(seen['x-auth-request-subject'], 'evil');
  t.equal(seen['x-auth-request-issuer'], s.acmeIdp.issuer);
  const audit = s.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === 'login' && l.outcome === 'success' && l.subject === 'evil');
  t.match(String(audit[0]?.emailDropped), /no email_verified claim/, 'the audit log says why the email was dropped');
  t.notMatch(s.logs.text(), /"emailDropped":"[^"]*alice@acme\.com/, 'without logging the email itself');
});

t.test('trust_unverified_email: true takes the email of a provider that never sends email_verified', async (t) => {
  const s = await twoTenants(t);
  const current = await s.call('sso.get_provider_configuration', { company: 'c-acme', id: 'c-acme' });
  const { has_client_secret: _h, ...configuration } = current.data.configuration as Record<string, unknown>;
  const bad = await s.call('sso.save_provider_configuration', { provider: 'keycloak', company: 'c-acme', configuration: { ...configuration, trust_unverified_email: 'yes' } });
  t.equal(bad.status, 400, 'a non-boolean value is refused');
  t.equal(bad.meta.result_subcode, 12);
  const saved = await s.call('sso.save_provider_configuration', { provider: 'keycloak', company: 'c-acme', configuration: { ...configuration, trust_unverified_email: true } });
  t.equal(saved.status, 200, 'saved');
  t.equal((saved.data.configuration as Record<string, unknown>).trust_unverified_email, true, 'and read back');
  const evil = await s.login('evil');
  await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json' } }, evil.browser);
  const seen = s.upstream.seen.at(-1)!.headers;
  t.equal(seen['x-auth-request-email'], 'alice@acme.com', 'the operator vouched for the provider');
  t.equal(seen['x-auth-request-subject'], 'evil', 'the subject still tells the accounts apart');
});
