import t from 'tap';
import { createLogger } from '../src/logger.js';
import { logCollector } from './helpers/gateway.js';

t.test('secrets are redacted from log lines even if a caller logs them', async (t) => {
  const logs = logCollector();
  const log = createLogger('info', logs.stream);
  log.info({ client_secret: 's3cret-a', configuration: { client_secret: 's3cret-b' }, idToken: 'tok-c', headers: { authorization: 'Basic abc', cookie: 'tg_session=xyz' } }, 'x');
  log.child({ reqId: 'r1' }).info({ req: { method: 'GET', url: '/callback_x?code=code-d&state=st-e', headers: { cookie: 'a=b' } } }, 'y');
  await new Promise((r) => setTimeout(r, 20));
  const text = logs.text();
  for (const secret of ['s3cret-a', 's3cret-b', 'tok-c', 'Basic abc', 'tg_session=xyz', 'code-d', 'st-e']) t.notMatch(text, secret, `${secret} not logged`);
  t.match(text, /\[redacted\]/);
});
