import t from 'tap';
import { hasControlChar, percentDecode } from '../../src/tenancy/percent.js';
import { printable } from './fixture-reader.js';

t.test('percentDecode decodes escapes as UTF-8, once', async (t) => {
  t.equal(percentDecode('/a%2Fb%2f'), '/a/b/');
  t.equal(percentDecode('caf%C3%A9'), 'café');
  t.equal(percentDecode('%252f'), '%2f', 'one layer only');
  t.equal(percentDecode('no escapes'), 'no escapes');
  t.equal(percentDecode('café%20x'), 'café x', 'literal non-ASCII kept');
  t.equal(percentDecode('%F0%9F%98%80'), '\u{1f600}');
  t.equal(percentDecode('a+b'), 'a+b', '+ is not a space here');
  t.equal(percentDecode('%EF%BB%BFx'), '\ufeffx', 'a BOM is kept, not swallowed');
});

t.test('strict mode refuses stray %; lenient keeps it', async (t) => {
  for (const bad of ['%', '%2', '%zz', 'a%g1', '100%']) {
    t.equal(percentDecode(bad), undefined, `strict ${bad}`);
  }
  t.equal(percentDecode('100%', 'lenient'), '100%');
  t.equal(percentDecode('%zz%41', 'lenient'), '%zzA');
});

t.test('invalid UTF-8 is refused in both modes', async (t) => {
  for (const bad of ['%C0%AF', '%E0%80%AF', '%ED%A0%80', '%FF', '%80', '%C3', '%F4%90%80%80']) {
    t.equal(percentDecode(bad), undefined, `strict ${bad}`);
    t.equal(percentDecode(bad, 'lenient'), undefined, `lenient ${bad}`);
  }
  t.equal(percentDecode('a\ud800b'), undefined, 'lone surrogate in the input');
});

t.test('hasControlChar: C0, DEL and C1', async (t) => {
  for (const c of ['\u0000', '\t', '\n', '\r', '\u001f', '\u007f', '\u0085', '\u009f']) {
    t.ok(hasControlChar(`a${c}b`), printable(c));
  }
  for (const s of ['plain', 'a b', 'café', '\u00a0', '\u2028']) t.notOk(hasControlChar(s), printable(s));
});
