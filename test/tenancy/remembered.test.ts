import t from 'tap';
import { remembered } from '../../src/tenancy/remembered.js';

t.test('answers as the function does, asking it once per input while it fits', async (t) => {
  const asked: string[] = [];
  const upper = remembered((s: string) => {
    asked.push(s);
    return s === 'bad' ? undefined : s.toUpperCase();
  }, 3);
  t.equal(upper('a'), 'A');
  t.equal(upper('a'), 'A');
  t.equal(upper('bad'), undefined);
  t.equal(upper('bad'), undefined, 'undefined answers are remembered too');
  t.same(asked, ['a', 'bad']);
  upper('b');
  upper('c');
  t.equal(upper('c'), 'C');
  t.same(asked, ['a', 'bad', 'b', 'c'], 'a full memory starts over instead of growing');
  t.equal(upper('a'), 'A');
  t.same(asked, ['a', 'bad', 'b', 'c', 'a']);
});
