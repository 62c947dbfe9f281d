/**
 * X-Auth-Request-Jwt: an upstream verifies it against the gateway's JWKS with jose,
 * rejects a tampered one, and keeps verifying across a key rotation.
 */
import t from 'tap';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { rotateSigningKey } from '../../src/assertion/keys.js';
import { startGateway } from '../helpers/gateway.js';
import { twoTenants } from '../helpers/two-tenants.js';

const ISSUER = 'http://ml.example.com';

t.test('an upstream verifies the assertion with the published keys, and nothing else', async (t) => {
  const s = await twoTenants(t, { assertion: { keyRefreshSeconds: 1 } });
  const jwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${s.publicPort}/.well-known/jwks.json`), { cooldownDuration: 0 });
  const bob = await s.login('bob');
  const session = bob.browser.cookies.get('tg_session')!;
  const get = async (browser = bob.browser, host = 'acme.ml.example.com') => {
    const res = await s.req({ path: '/projects', host, headers: { accept: 'application/json' } }, browser);
    t.equal(res.status, 200);
    return String(s.upstream.seen.at(-1)!.headers['x-auth-request-jwt'] ?? '');
  };
  const token = await get();
  t.match(token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/, 'the upstream receives a compact JWT');
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: 'http://acme.ml.example.com', algorithms: ['ES256'] });
  t.equal(protectedHeader.alg, 'ES256');
  t.match(payload, { sub: 'bob', email: 'bob@acme.com', name: 'Bob User', tenant: 'acme', groups: ['Users'], admin: false, idp: s.acmeIdp.issuer });
  const p = payload as JWTPayload & { sid: string };
  t.ok(p.exp! - p.iat! <= 60 && p.exp! > p.iat!, 'a short lifetime');
  t.type(p.sid, 'string');
  t.not(p.sid, session, 'sid is not the session id');
  t.notOk(session.includes(p.sid) || p.sid.includes(session), 'nor a part of it');
  t.equal(await get(), token, 'the signed token is reused while fresh');

  const base = await get(bob.browser, 'ml.example.com');
  t.equal(decodeJwt(base).aud, ISSUER, 'on the base host, aud is the base origin');
  await t.rejects(jwtVerify(base, jwks, { issuer: ISSUER, audience: 'http://acme.ml.example.com' }), 'a token for one origin is refused by another');

  const [h, b, sig] = token.split('.') as [string, string, string];
  const forged = Buffer.from(JSON.stringify({ ...payload, admin: true, groups: ['Admins'] })).toString('base64url');
  await t.rejects(jwtVerify(`${h}.${forged}.${sig}`, jwks, { issuer: ISSUER, audience: 'http://acme.ml.example.com' }), 'a tampered payload is rejected');
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
  await t.rejects(jwtVerify(`${none}.${b}.`, jwks, { issuer: ISSUER, audience: 'http://acme.ml.example.com' }), 'an unsigned copy is rejected');
  const flipped = sig.slice(0, -2) + (sig.endsWith('AA') ? 'BB' : 'AA');
  await t.rejects(jwtVerify(`${h}.${b}.${flipped}`, jwks, { issuer: ISSUER, audience: 'http://acme.ml.example.com' }), 'a broken signature is rejected');

  const anon = await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json', 'x-auth-request-jwt': token } });
  t.equal(anon.status, 401, 'a replayed assertion is no credential at the gateway');

  // Rotation: the new key signs, the old tokens keep verifying.
  const oldKid = decodeProtectedHeader(token).kid;
  const newKid = await rotateSigningKey(s.gateway.store, 86_400_000);
  t.not(newKid, oldKid);
  let rotated = token;
  for (let i = 0; i < 40 && decodeProtectedHeader(rotated).kid !== newKid; i++) {
    await new Promise((r) => setTimeout(r, 100));
    rotated = await get();
  }
  t.equal(decodeProtectedHeader(rotated).kid, newKid, 'within keyRefreshSeconds the new key signs');
  t.match((await jwtVerify(rotated, jwks, { issuer: ISSUER, audience: 'http://acme.ml.example.com' })).payload, { sub: 'bob' }, 'a new token verifies');
  t.match((await jwtVerify(token, jwks, { issuer: ISSUER, audience: 'http://acme.ml.example.com' })).payload, { sub: 'bob' }, 'an old token still verifies');
  const set = JSON.parse((await s.req({ path: '/.well-known/jwks.json' })).body) as { keys: Array<Record<string, unknown>> };
  t.same(set.keys.map((k) => k.kid).sort(), [oldKid, newKid].sort(), 'both keys are published');
});

t.test('the JWK Set: any host, cache headers, public parts only; every replica shares the key', async (t) => {
  const s = await twoTenants(t);
  for (const host of ['ml.example.com', 'acme.ml.example.com', 'unknown.example']) {
    const res = await s.req({ path: '/.well-known/jwks.json', host });
    t.equal(res.status, 200, `served on ${host}`);
    t.match(res.headers['cache-control'], /^public, max-age=\d+$/);
    const set = JSON.parse(res.body) as { keys: Array<Record<string, unknown>> };
    t.equal(set.keys.length, 1, 'one key on first start');
    t.match(set.keys[0], { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    t.notOk('d' in set.keys[0]!, 'never the private part');
  }
  const first = (await s.req({ path: '/.well-known/jwks.json' })).body;
  const replica = await startGateway(t, { mode: 'authenticate', public: { host: '127.0.0.1', port: 0, url: ISSUER }, upstreams: { webapp: 'http://127.0.0.1:9' }, session: { secret: 'a-session-secret-of-at-least-32-characters' } }, { dir: s.dir });
  const res = await fetch(`${replica.publicUrl}/.well-known/jwks.json`);
  t.equal(await res.text(), first, 'a second replica on the same store publishes the same key');
});

t.test('assertion_audience: a per-company aud, validated by the admin API', async (t) => {
  const s = await twoTenants(t);
  for (const bad of ['has space', 'x'.repeat(3000)]) {
    const r = await s.call('system.update_company_sso_config', { company: 'c-acme', sso: { assertion_audience: bad } });
    t.equal(r.status, 400, `refused: ${bad.slice(0, 20)}`);
  }
  const ok = await s.call('system.update_company_sso_config', { company: 'c-acme', sso: { assertion_audience: 'https://apps.acme.com/ml' } });
  t.equal(ok.status, 200);
  const alice = await s.login('alice');
  await s.req({ path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json' } }, alice.browser);
  const jwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${s.publicPort}/.well-known/jwks.json`));
  const token = String(s.upstream.seen.at(-1)!.headers['x-auth-request-jwt']);
  const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: 'https://apps.acme.com/ml' });
  t.match(payload, { sub: 'alice', admin: true, groups: ['Admins', 'Users'] });
});

t.test('route mode sends no assertion', async (t) => {
  const { startUpstream, seedRouteTenants, publicRequest } = await import('../helpers/gateway.js');
  const up = await startUpstream(t);
  const gw = await startGateway(t, { upstreams: { webapp: up.url } });
  await seedRouteTenants(gw.adminUrl);
  await publicRequest(gw.publicPort, { path: '/projects', host: 'acme.ml.example.com', headers: { accept: 'application/json', 'x-auth-request-jwt': 'forged' } });
  t.equal(up.seen.at(-1)?.headers['x-auth-request-jwt'], undefined, 'none, and a client one is dropped');
});
