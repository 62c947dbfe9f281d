import t from 'tap';
import { isValidTenantId, sameTenant, tenantKey } from '../../src/tenancy/tenant-id.js';
import { printable } from './fixture-reader.js';

t.test('tenant IDs: 1-63 letters, digits, - _ .', async (t) => {
  for (const ok of ['a', 'acme', 'Acme-Corp', 'acme_corp', 'acme.eu', '0', 'a'.repeat(63), '...', '.hidden', 'x..y', '-', '_']) {
    t.ok(isValidTenantId(ok), `accepts ${printable(ok)}`);
  }
  for (const bad of [
    '',
    '.',
    '..',
    'a'.repeat(64),
    'acme corp',
    ' acme',
    'acme ',
    'acme/x',
    'acme\\x',
    'acme%2f',
    'acme@x',
    'acme:1',
    'acme\n',
    'ac\u0000me',
    'café',
    '\u212acme',
    'ａｃｍｅ',
    'acme\u200b',
  ]) {
    t.notOk(isValidTenantId(bad), `refuses ${printable(bad)}`);
  }
});

t.test('refuses non-strings given through untyped callers', async (t) => {
  t.notOk(isValidTenantId(undefined as unknown as string));
  t.notOk(isValidTenantId(42 as unknown as string));
});

t.test('tenantKey lower-cases ASCII only', async (t) => {
  t.equal(tenantKey('AcMe-CORP_1.x'), 'acme-corp_1.x');
  t.equal(tenantKey('acme'), 'acme');
  // U+212A KELVIN SIGN lower-cases to "k" under Unicode rules; it must not here.
  t.equal(tenantKey('\u212a'), '\u212a');
  t.not(tenantKey('\u212aACME'), 'kacme');
});

t.test('sameTenant compares case-insensitively and only valid IDs', async (t) => {
  t.ok(sameTenant('ACME', 'acme'));
  t.ok(sameTenant('Acme.EU', 'acme.eu'));
  t.notOk(sameTenant('acme', 'acme2'));
  t.notOk(sameTenant('..', '..'));
  t.notOk(sameTenant('', ''));
  t.notOk(sameTenant('\u212a', 'k'));
});
