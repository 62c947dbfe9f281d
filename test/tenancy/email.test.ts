import t from 'tap';
import { emailDomain } from '../../src/tenancy/email.js';
import { describeEntry, readFixture } from './fixture-reader.js';

t.test('emailDomain returns the normalised domain', async (t) => {
  t.equal(emailDomain('jane@acme.com'), 'acme.com');
  t.equal(emailDomain('  Jane.Doe+ml@ACME.com  '), 'acme.com', 'trimmed, lower-cased');
  t.equal(emailDomain('jane@acme.com.'), 'acme.com', 'trailing dot');
  t.equal(emailDomain('jane@eu.acme.com'), 'eu.acme.com', 'subdomains are kept, not folded');
  t.equal(emailDomain('jane@bücher.de'), 'xn--bcher-kva.de', 'IDN to punycode');
  t.equal(emailDomain("o'brien@acme.com"), 'acme.com');
  t.equal(emailDomain('user%40evil.example@acme.com'), 'acme.com', 'an encoded @ in the local part is just text');
  t.equal(emailDomain(`${'a'.repeat(64)}@acme.com`), 'acme.com', '64-character local part');
});

t.test('length limits', async (t) => {
  const domain250 = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(54)].join('.') + '.com';
  t.equal(domain250.length, 250);
  t.equal(emailDomain(`abc@${domain250}`), domain250, '254 characters in all');
  t.equal(emailDomain(`abcd@${domain250}`), undefined, '255 characters in all');
  t.equal(emailDomain(`${'a'.repeat(65)}@acme.com`), undefined, '65-character local part');
});

t.test('empty and non-string input', async (t) => {
  t.equal(emailDomain(''), undefined);
  t.equal(emailDomain('   '), undefined);
  t.equal(emailDomain(undefined as unknown as string), undefined);
});

t.test('corpus: hostile email values give no domain', async (t) => {
  for (const entry of readFixture('hostile-emails.txt')) {
    t.equal(emailDomain(entry.value), undefined, describeEntry(entry));
  }
});
