import t from 'tap';
import type { TenantRecord } from '../../src/directory/types.js';
import {
  callbackBelongsToHost,
  loginAllowedOnHost,
  providerOfSession,
  sameTenant,
  sessionValidOnHost,
  tenantClaimMatches,
  transactionMatches,
} from '../../src/tenancy/isolation.js';

/** Look-alikes of `kiwi` that must never name it. */
const CONFUSABLES: Array<[string, string]> = [
  ['\u212Aiwi', 'KELVIN SIGN'],
  ['k\u0131wi', 'dotless i'],
  ['k\u0130wi', 'capital I with dot above'],
  ['\uFF4B\uFF49\uFF57\uFF49', 'full-width letters'],
  ['kiwi.', 'trailing dot'],
  ['kiwi ', 'trailing space'],
  ['kiwi\u200b', 'zero-width space'],
  ['kiw\u0456', 'Cyrillic i'],
];

t.test('tenant IDs: ASCII case folding only', async (t) => {
  t.ok(sameTenant('kiwi', 'KIWI'));
  t.ok(sameTenant('Kiwi.EU', 'kiwi.eu'));
  t.notOk(sameTenant('..', '..'), 'dot segments are no tenant');
  t.notOk(sameTenant('', ''));
  for (const [alike, what] of CONFUSABLES) {
    t.notOk(sameTenant(alike, 'kiwi'), `${what} is not kiwi`);
    t.notOk(tenantClaimMatches(alike, 'kiwi'), `a ${what} claim is not kiwi`);
    t.notOk(callbackBelongsToHost(alike, 'kiwi'), `a ${what} client is not kiwi's`);
    t.notOk(sessionValidOnHost(alike, 'kiwi'), `a ${what} session is not valid on kiwi`);
    t.notOk(loginAllowedOnHost(alike, 'kiwi'), `a ${what} login is not served on kiwi`);
  }
});

t.test('hosts: the base host accepts every tenant, a tenant host only its own', async (t) => {
  t.ok(callbackBelongsToHost('acme', undefined));
  t.notOk(callbackBelongsToHost(undefined, 'acme'), 'a provider of no tenant on a tenant host');
  t.ok(sessionValidOnHost('acme', undefined));
  t.ok(sessionValidOnHost('ACME', 'acme'));
  t.notOk(sessionValidOnHost('globex', 'acme'));
  t.ok(loginAllowedOnHost('acme', 'Acme'));
  t.notOk(loginAllowedOnHost('globex', 'acme'));
});

t.test('login transactions complete on their host, client and tenant only', async (t) => {
  const started = { clientId: 'acme-web', host: 'acme.ml.example.com', tenant: 'acme' };
  t.ok(transactionMatches(started, { ...started, tenant: 'ACME' }));
  t.notOk(transactionMatches(started, { ...started, host: 'ml.example.com' }));
  t.notOk(transactionMatches(started, { ...started, clientId: 'globex-web' }));
  t.notOk(transactionMatches(started, { ...started, tenant: '\u212Acme' }));
});

t.test('a session stands only while its tenant record names its company and client', async (t) => {
  const record = (company: string, tenant: string, clientIds: string[]): TenantRecord => ({
    company: { company, sso: { tenant, group_mapping: {}, admin_groups: [], groups: [], domains: [], hosts: [] } },
    providers: clientIds.map((client_id) => ({ provider: 'keycloak', company, configuration: { id: client_id, client_id } })),
  });
  const session = { tenant: 'globex', company: 'c-globex', clientId: 'globex-web' };
  t.ok(providerOfSession(session, record('c-globex', 'globex', ['globex-web'])));
  t.notOk(providerOfSession(session, undefined), 'tenant deleted');
  t.notOk(providerOfSession(session, record('c-newcorp', 'GLOBEX', ['globex-web'])), 'tenant handed to another company');
  t.notOk(providerOfSession(session, record('c-globex', 'globex', ['other'])), 'provider deleted');
});
