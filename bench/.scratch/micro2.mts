import { pino } from 'pino';
import { Writable } from 'node:stream';
import { REDACT_PATHS } from '../../src/logger.ts';
const sink = new Writable({ write(_c, _e, cb) { cb(); } });
const time = (label: string, n: number, f: (i: number) => unknown) => {
  for (let i = 0; i < n / 10; i++) f(i);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f(i);
  console.log(label.padEnd(50), (Number(process.hrtime.bigint() - t) / n / 1000).toFixed(2), 'µs');
};
const variants: Record<string, string[] | undefined> = { none: undefined, all: REDACT_PATHS, 'no leading *': REDACT_PATHS.filter((p) => !p.startsWith('*')) };
for (const [k, paths] of Object.entries(variants)) {
  const l = pino({ level: 'warn', ...(paths ? { redact: { paths, censor: '[redacted]' } } : {}) }, sink as never).child({ listener: 'public' });
  time(`child({reqId}) redact=${k}`, 100000, (i) => l.child({ reqId: `req-${i}` }));
}
console.log(REDACT_PATHS.filter((p) => p.startsWith('*')));
