import t from 'tap';
import { Sealer } from '../../src/oidc/seal.js';

const SECRET = 'a-current-secret-of-at-least-32-characters';
const OLD = 'an-earlier-secret-of-at-least-32-characters';
const NOW = 1_700_000_000_000;

t.test('a sealed value opens to the same payload and hides it', async (t) => {
  const sealer = new Sealer(SECRET);
  const payload = { state: 'abc', verifier: 'v'.repeat(43), redirect: '/projects?x=1', n: 3, ok: true };
  const sealed = sealer.seal(payload, 600, NOW);
  t.match(sealed, /^[A-Za-z0-9_-]+$/, 'base64url, cookie-safe');
  t.notMatch(Buffer.from(sealed, 'base64url').toString('latin1'), /projects|abc/, 'payload is not readable');
  t.same(sealer.unseal(sealed, NOW), payload);
  t.not(sealer.seal(payload, 600, NOW), sealed, 'two seals of one payload differ');
});

t.test('expiry is embedded and checked', async (t) => {
  const sealer = new Sealer(SECRET);
  const sealed = sealer.seal({ a: 1 }, 60, NOW);
  t.same(sealer.unseal(sealed, NOW + 59_999), { a: 1 }, 'just before expiry');
  t.equal(sealer.unseal(sealed, NOW + 60_000), undefined, 'at expiry');
  t.equal(sealer.unseal(sealed, NOW + 3600_000), undefined, 'long after');
  t.throws(() => sealer.seal({}, 0, NOW), RangeError, 'a TTL is required');
});

t.test('any changed, cut or extended value does not open', async (t) => {
  const sealer = new Sealer(SECRET);
  const sealed = sealer.seal({ user: 'alice', admin: false }, 600, NOW);
  const raw = Buffer.from(sealed, 'base64url');
  for (let i = 0; i < raw.length; i++) {
    const copy = Buffer.from(raw);
    copy[i] = copy[i]! ^ 0x01;
    if (sealer.unseal(copy.toString('base64url'), NOW) !== undefined) t.fail(`byte ${i} flipped still opens`);
  }
  t.pass('no single flipped bit opens');
  t.equal(sealer.unseal(sealed.slice(0, -1), NOW), undefined, 'truncated by one character');
  t.equal(sealer.unseal(sealed.slice(0, 20), NOW), undefined, 'truncated to the header');
  t.equal(sealer.unseal(`${sealed}AA`, NOW), undefined, 'extended');
  t.equal(sealer.unseal(`${sealed}=`, NOW), undefined, 'padding added');
});

t.test('garbage never throws', async (t) => {
  const sealer = new Sealer(SECRET);
  const inputs: unknown[] = ['', 'a', '!!!!', 'a'.repeat(10_000), 'AQ', Buffer.alloc(64).toString('base64url'), null, 42, {}];
  for (const input of inputs) {
    t.equal(sealer.unseal(input as string, NOW), undefined, `unseal(${JSON.stringify(input)?.slice(0, 20)})`);
  }
});

t.test('a value sealed with another secret or for another purpose does not open', async (t) => {
  const sealed = new Sealer(SECRET, [], { purpose: 'login' }).seal({ a: 1 }, 600, NOW);
  t.same(new Sealer(SECRET, [], { purpose: 'login' }).unseal(sealed, NOW), { a: 1 }, 'same secret and purpose');
  t.equal(new Sealer(OLD, [], { purpose: 'login' }).unseal(sealed, NOW), undefined, 'other secret');
  t.equal(new Sealer(SECRET, [], { purpose: 'session' }).unseal(sealed, NOW), undefined, 'other purpose');
  t.equal(new Sealer(SECRET).unseal(sealed, NOW), undefined, 'default purpose');
});

t.test('rotation: previous secrets still open, new seals use the current one', async (t) => {
  const before = new Sealer(OLD);
  const oldValue = before.seal({ from: 'old' }, 600, NOW);
  const after = new Sealer(SECRET, [OLD]);
  t.same(after.unseal(oldValue, NOW), { from: 'old' }, 'value sealed before the rotation opens');
  const newValue = after.seal({ from: 'new' }, 600, NOW);
  t.same(new Sealer(SECRET).unseal(newValue, NOW), { from: 'new' }, 'new value opens with the current secret alone');
  t.equal(before.unseal(newValue, NOW), undefined, 'new value does not open with the old secret');
  t.equal(new Sealer(SECRET).unseal(oldValue, NOW), undefined, 'once the old secret is dropped, old values stop opening');
});

t.test('short secrets are refused at construction', async (t) => {
  t.throws(() => new Sealer('short'));
  t.throws(() => new Sealer(SECRET, ['short']));
});
