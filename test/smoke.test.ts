import t from 'tap';
import { ConflictError } from '../src/errors.js';
t.test('conflict error', async (t) => {
  const e = new ConflictError('tenant', 'acme');
  t.equal(e.statusCode, 409);
  t.equal(e.field, 'tenant');
});
