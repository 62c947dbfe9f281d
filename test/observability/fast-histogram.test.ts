import { Histogram, Registry } from 'prom-client';
import t from 'tap';
import { FastHistogram } from '../../src/observability/fast-histogram.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1, 10];

/** The exposition's lines of one metric, sorted (label order within a line aside). */
function lines(text: string): string[] {
  const norm = (line: string) => {
    const m = /^([^{\s]+)(?:\{([^}]*)\})? (.+)$/.exec(line);
    if (!m) return line;
    const labels = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
    return `${m[1]}{${labels}} ${m[3]}`;
  };
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map(norm).sort();
}

t.test('the exposition is the one prom-client gives for the same observations', async (t) => {
  const fastReg = new Registry();
  const refReg = new Registry();
  const fast = new FastHistogram({ name: 'lat_seconds', help: 'h', labelNames: ['class', 'tenant'], buckets: BUCKETS, registry: fastReg });
  const ref = new Histogram({ name: 'lat_seconds', help: 'h', labelNames: ['class', 'tenant'], buckets: BUCKETS, registers: [refReg] });
  const series = [
    { class: 'proxied', tenant: 'acme' },
    { class: 'page', tenant: 'we"ird\\name' },
  ];
  const observers = series.map((labels) => fast.bind(labels));
  // Bucket edges, between them, below the first and above the last bound.
  const values = [0, 0.0005, 0.0006, 0.001, 0.0049, 0.01, 0.5, 1, 9.99, 10, 10.01, 123];
  values.forEach((v, i) => {
    observers[i % 2]!(v);
    ref.observe(series[i % 2]!, v);
  });
  t.same(lines(await fastReg.metrics()), lines(await refReg.metrics()));
  t.match(await fastReg.metrics(), /# TYPE lat_seconds histogram/);
});

t.test('values that are not numbers or negative are not counted; reset zeroes every series', async (t) => {
  const registry = new Registry();
  const h = new FastHistogram({ name: 'x_seconds', help: 'h', labelNames: ['k'], buckets: BUCKETS, registry });
  const observe = h.bind({ k: 'a' });
  observe(NaN);
  observe(-1);
  observe(0.002);
  t.match(await registry.metrics(), /x_seconds_count\{k="a"\} 1\n/);
  t.match(await registry.metrics(), /x_seconds_bucket\{k="a",le="0.001"\} 0\n/);
  t.match(await registry.metrics(), /x_seconds_bucket\{k="a",le="0.0025"\} 1\n/);
  h.reset();
  t.match(await registry.metrics(), /x_seconds_count\{k="a"\} 0\n/);
});
