import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, redactConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const minimal = {
  admin: { credentials: [{ key: 'k', secret: 'secret-123' }] },
  upstreams: { webapp: 'http://127.0.0.1:3000' },
  tenancy: { baseDomain: 'ml.example.com' },
};

function problemsOf(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('default.yaml loads with every default filled in', async (t) => {
  const c = loadConfig({ file: 'config/default.yaml', env: {} });
  t.equal(c.mode, 'route');
  t.equal(c.public.port, 8080);
  t.equal(c.admin.host, '127.0.0.1');
  t.equal(c.session.webappCookie, 'clearml_token_basic');
  t.equal(c.store.url, 'sqlite:./data/tenant-gate.db');
  t.same(c.sso, { tenant_login: true, allow_settings_providers: false, only_password_login: false });
});

t.test('defaults fill nested sections of a minimal object', async (t) => {
  const c = loadConfig({ object: minimal, env: {} });
  t.equal(c.cache.max, 10000);
  t.equal(c.cache.ttlSeconds, 60);
  t.equal(c.public.url, 'http://localhost:8080');
  t.same(c.oidc.scopes, ['openid', 'profile', 'email']);
});

t.test('environment overrides win over the file, with coercion', async (t) => {
  const c = loadConfig({
    object: minimal,
    env: {
      TENANT_GATE__public__port: '9000',
      TENANT_GATE__PUBLIC__TRUSTEDPROXIES: '["10.0.0.0/8"]',
      TENANT_GATE__cache__ttlSeconds: '5',
      CLEARML__services__login__sso__tenant_login: 'false',
      CLEARML__services__login__sso__allow_settings_providers: 'True',
      WEBSERVER__onlyPasswordLogin: 'true',
    },
  });
  t.equal(c.public.port, 9000);
  t.same(c.public.trustedProxies, ['10.0.0.0/8']);
  t.equal(c.cache.ttlSeconds, 5);
  t.equal(c.sso.tenant_login, false);
  t.equal(c.sso.allow_settings_providers, true);
  t.equal(c.sso.only_password_login, true);
});

t.test('${VAR} substitution, with defaults, and unset variables are errors', async (t) => {
  const obj = { ...minimal, upstreams: { webapp: '${WEB}' }, tenancy: { baseDomain: '${BASE:-x.example.com}' } };
  const c = loadConfig({ object: obj, env: { WEB: 'http://127.0.0.1:4000' } });
  t.equal(c.upstreams.webapp, 'http://127.0.0.1:4000');
  t.equal(c.tenancy.baseDomain, 'x.example.com');
  const problems = problemsOf(() => loadConfig({ object: obj, env: {} }));
  t.ok(problems.some((p) => p.path === '/upstreams/webapp' && /WEB is not set/.test(p.message)));
});

t.test('every problem is reported with its path', async (t) => {
  const problems = problemsOf(() =>
    loadConfig({
      object: {
        bogus: 1,
        mode: 'proxy',
        public: { port: 'eighty', extra: true, url: 'ftp://x', trustedProxies: ['10.0.0.0/99'] },
        admin: { credentials: [{ key: 'a', secret: 'short' }] },
        tenancy: { baseDomain: 'bad domain' },
        store: { url: 'mysql://x' },
      },
      env: { TENANT_GATE__nope__x: '1' },
    }),
  );
  const paths = problems.map((p) => p.path);
  for (const p of ['/bogus', '/mode', '/public/port', '/public/extra', '/admin/credentials/0/secret', '/upstreams']) {
    t.ok(paths.some((x) => x.startsWith(p)), `reports ${p}`);
  }
  t.ok(paths.includes('env TENANT_GATE__nope__x'), 'reports the unknown env key');
  t.ok(problems.find((p) => p.path === '/bogus')?.message.includes('unknown key'));
});

t.test('semantic checks after the schema', async (t) => {
  const problems = problemsOf(() =>
    loadConfig({
      object: {
        ...minimal,
        mode: 'authenticate',
        public: { url: 'ftp://x', trustedProxies: ['10.0.0.0/99', 'nope'] },
        tenancy: { baseDomain: 'bad domain' },
        store: { url: 'mysql://x' },
        admin: { credentials: [{ key: 'a', secret: 'secret-1' }, { key: 'a', secret: 'secret-2' }] },
      },
      env: {},
    }),
  );
  const paths = problems.map((p) => p.path);
  t.ok(paths.includes('/public/url'));
  t.ok(paths.includes('/public/trustedProxies/0'));
  t.ok(paths.includes('/public/trustedProxies/1'));
  t.ok(paths.includes('/tenancy/baseDomain'));
  t.ok(paths.includes('/store/url'));
  t.ok(paths.includes('/session/secret'));
  t.ok(paths.includes('/admin/credentials/1/key'));
});

t.test('YAML files: syntax errors, duplicate keys, non-mappings, missing files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-config-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'mode: route\nmode: authenticate\n');
  t.throws(() => loadConfig({ file: bad, env: {} }), ConfigError);
  writeFileSync(bad, '- a\n- b\n');
  t.match(problemsOf(() => loadConfig({ file: bad, env: {} }))[0]?.message, /mapping/);
  t.match(problemsOf(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} }))[0]?.message, /cannot read/);
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'admin:\n  credentials: [{key: k, secret: "12345678"}]\nupstreams: {webapp: "http://127.0.0.1:1"}\ntenancy: {baseDomain: a.b}\n');
  t.equal(loadConfig({ env: { TENANT_GATE_CONFIG: good } }).tenancy.baseDomain, 'a.b');
});

t.test('redactConfig hides every secret', async (t) => {
  const c = loadConfig({
    object: { ...minimal, session: { secret: 'x'.repeat(40), previousSecrets: ['y'.repeat(40)] }, store: { url: 'postgres://u:pw@h/db' } },
    env: {},
  });
  const text = JSON.stringify(redactConfig(c));
  t.notMatch(text, /secret-123|xxxxxxxx|yyyyyyyy|:pw@/);
  t.match(text, /\[redacted\]/);
});
