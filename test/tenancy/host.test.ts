import t from 'tap';
import { classifyHost, isLoopbackHost, normalizeDomain, normalizeHost } from '../../src/tenancy/host.js';
import { describeEntry, printable, readFixture } from './fixture-reader.js';

const label63 = 'a'.repeat(63);
const name253 = [label63, label63, label63, 'd'.repeat(61)].join('.');

t.test('normalizeHost: case, port, trailing dot and IDN', async (t) => {
  const cases: Array<[string, string]> = [
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com:8080', 'example.com'],
    ['example.com:1', 'example.com'],
    ['example.com:65535', 'example.com'],
    ['example.com.', 'example.com'],
    ['EXAMPLE.com.:443', 'example.com'],
    ['acme.ml.example.com', 'acme.ml.example.com'],
    ['acme_corp.ml.example.com', 'acme_corp.ml.example.com'],
    ['bücher.de', 'xn--bcher-kva.de'],
    ['BÜCHER.de:8443', 'xn--bcher-kva.de'],
    ['XN--BCHER-KVA.DE', 'xn--bcher-kva.de'],
    ['ａｃｍｅ.com', 'acme.com'],
    ['localhost', 'localhost'],
    ['localhost:3000', 'localhost'],
    ['127.0.0.1', '127.0.0.1'],
    ['127.0.0.1:8080', '127.0.0.1'],
    ['[::1]', '[::1]'],
    ['[::1]:8080', '[::1]'],
    ['[0:0:0:0:0:0:0:1]', '[::1]'],
    ['[2001:DB8::A]:443', '[2001:db8::a]'],
    [`${label63}.com`, `${label63}.com`],
    [name253, name253],
    [`${name253}.`, name253],
  ];
  for (const [raw, want] of cases) t.equal(normalizeHost(raw), want, printable(raw));
});

t.test('normalizeHost: refuses the obvious malformed values', async (t) => {
  for (const raw of ['', ' ', 'a..b', 'example.com:', 'example.com:0', '::1', 'a@b', 'a/b', 'a b']) {
    t.equal(normalizeHost(raw), undefined, printable(raw));
  }
  t.equal(normalizeHost(`${name253}x`), undefined, '254 characters');
  t.equal(normalizeHost(`${'a'.repeat(64)}.com`), undefined, '64-character label');
  t.equal(normalizeHost('x'.repeat(2000)), undefined, 'very long input');
  t.equal(normalizeHost(undefined as unknown as string), undefined, 'not a string');
});

t.test('normalizeHost: the normal form is a fixed point', async (t) => {
  for (const raw of ['Example.COM.:80', 'bücher.de', '[0:0::1]:1', '127.0.0.1:9', name253]) {
    const once = normalizeHost(raw);
    t.ok(once !== undefined, printable(raw));
    t.equal(normalizeHost(once ?? ''), once, `fixed point for ${printable(raw)}`);
  }
});

t.test('corpus: hostile Host headers are refused', async (t) => {
  const entries = readFixture('hostile-hosts.txt');
  for (const entry of entries) {
    t.equal(normalizeHost(entry.value), undefined, describeEntry(entry));
    t.equal(normalizeDomain(entry.value), undefined, `as a domain, ${describeEntry(entry)}`);
  }
});

t.test('normalizeDomain: names only, no port, no IP', async (t) => {
  t.equal(normalizeDomain('Acme.COM'), 'acme.com');
  t.equal(normalizeDomain('acme.com.'), 'acme.com');
  t.equal(normalizeDomain('bücher.de'), 'xn--bcher-kva.de');
  t.equal(normalizeDomain('localhost'), 'localhost');
  t.equal(normalizeDomain('ml.acme.com'), 'ml.acme.com');
  for (const raw of ['acme.com:443', 'acme.com:', '127.0.0.1', '10.1.2.3', '[::1]', '::1', '123', '', ' acme.com', 'acme.com ']) {
    t.equal(normalizeDomain(raw), undefined, printable(raw));
  }
});

t.test('classifyHost', async (t) => {
  const opts = {
    baseHosts: new Set(['gateway.example.org', 'ml.example.com']),
    baseDomain: 'ml.example.com',
  };
  t.same(classifyHost('ml.example.com', opts), { kind: 'base' }, 'base domain');
  t.same(classifyHost('gateway.example.org', opts), { kind: 'base' }, 'public.url host');
  t.same(classifyHost('acme.ml.example.com', opts), { kind: 'vanity', tenant: 'acme' });
  t.same(classifyHost('acme_corp.ml.example.com', opts), { kind: 'vanity', tenant: 'acme_corp' });
  t.same(classifyHost('xn--bcher-kva.ml.example.com', opts), { kind: 'vanity', tenant: 'xn--bcher-kva' });
  t.same(classifyHost('0.ml.example.com', opts), { kind: 'vanity', tenant: '0' });

  // Deeper names are never vanity hosts: a tenant is exactly one label.
  t.same(classifyHost('a.b.ml.example.com', opts), { kind: 'custom', host: 'a.b.ml.example.com' });
  // GHSA-4mf2-f3wh-gvf2: the suffix must start at a label boundary.
  t.same(classifyHost('evilml.example.com', opts), { kind: 'custom', host: 'evilml.example.com' });
  t.same(classifyHost('acme-ml.example.com', opts), { kind: 'custom', host: 'acme-ml.example.com' });
  t.same(classifyHost('ml.example.com.evil.example', opts), {
    kind: 'custom',
    host: 'ml.example.com.evil.example',
  });
  t.same(classifyHost('example.com', opts), { kind: 'custom', host: 'example.com' });
  t.same(classifyHost('ml.acme.com', opts), { kind: 'custom', host: 'ml.acme.com' });
  t.same(classifyHost('acme.gateway.example.org', opts), { kind: 'custom', host: 'acme.gateway.example.org' });
});

t.test('classifyHost with a Host header straight from a request', async (t) => {
  const opts = { baseHosts: new Set(['ml.example.com']), baseDomain: 'ml.example.com' };
  const host = normalizeHost('ACME.ML.Example.COM.:443');
  t.equal(host, 'acme.ml.example.com');
  t.same(classifyHost(host ?? '', opts), { kind: 'vanity', tenant: 'acme' });
  t.same(classifyHost(normalizeHost('ML.EXAMPLE.COM:8080') ?? '', opts), { kind: 'base' });
});

t.test('classifyHost without a base domain never finds vanity hosts', async (t) => {
  const opts = { baseHosts: new Set(['ml.example.com']), baseDomain: '' };
  t.same(classifyHost('acme.ml.example.com', opts), { kind: 'custom', host: 'acme.ml.example.com' });
  t.same(classifyHost('acme', opts), { kind: 'custom', host: 'acme' });
});

t.test('isLoopbackHost: localhost, 127.0.0.0/8 and ::1 only', async (t) => {
  for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '127.255.255.254', '[::1]', '::1']) {
    t.ok(isLoopbackHost(host), host);
  }
  for (const host of [
    'acme.localhost',
    'localhost.example.com',
    'localhost.localdomain',
    '128.0.0.1',
    '126.255.255.255',
    '0.0.0.0',
    '10.0.0.1',
    '[::]',
    '[::ffff:7f00:1]',
    '127.0.0.1.nip.io',
    '127.evil.example',
    '',
  ]) {
    t.notOk(isLoopbackHost(host), host);
  }
  t.ok(isLoopbackHost(normalizeHost('LOCALHOST.:8080') ?? ''), 'after normalisation');
  t.ok(isLoopbackHost(normalizeHost('[0::1]:9') ?? ''), 'IPv6 after normalisation');
  t.equal(normalizeHost('127.1'), undefined, 'a short form never reaches the loopback check');
});
