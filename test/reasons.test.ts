import { readFileSync } from 'node:fs';
import t from 'tap';
import { ErrorCodes } from '../src/errors.js';
import { CALLBACK_REFUSALS, CHANNEL_LOGOUT_OUTCOMES, LOGIN_REASONS, PAGE_REASONS } from '../src/reasons.js';

const doc = readFileSync(new URL('../docs/reasons.md', import.meta.url), 'utf8');

/** The backticked first cells of the table under a `## heading`. */
function listed(heading: string): string[] {
  const start = doc.indexOf(`## ${heading}`);
  if (start < 0) return [];
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
}

t.test('docs/reasons.md lists exactly the registry, in its order', async (t) => {
  t.same(listed('Callback refusals'), [...CALLBACK_REFUSALS]);
  t.same(listed('Login decisions'), [...LOGIN_REASONS]);
  t.same(listed('Requests answered by the gateway'), [...PAGE_REASONS]);
  t.same(listed('Logout requests from providers'), [...CHANNEL_LOGOUT_OUTCOMES]);
  t.same(listed('Error codes'), Object.values(ErrorCodes));
});

t.test('no reason is listed twice', async (t) => {
  for (const list of [CALLBACK_REFUSALS, LOGIN_REASONS, PAGE_REASONS, CHANNEL_LOGOUT_OUTCOMES]) t.equal(new Set(list).size, list.length);
});
