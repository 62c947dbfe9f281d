/**
 * A Prometheus histogram for the request path: an observation is a bucket search and
 * three additions on a series found once, with no label object, hash or validation
 * per call (prom-client's own `observe` builds and hashes its label set every time).
 *
 * Rules: it is a prom-client `Histogram` to the registry (same exposition, same
 * `_bucket`/`_sum`/`_count` series with cumulative buckets); label values are fixed
 * when a series is bound, so the caller keeps label sets bounded.
 */
import { Histogram, type Registry } from 'prom-client';

/** One label set's counts. */
interface Series {
  labels: Record<string, string>;
  /** Non-cumulative count per bucket; the last slot counts values above every bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** What prom-client's `Histogram.get()` resolves to. */
type Exported<L extends string> = Awaited<ReturnType<Histogram<L>['get']>>;
/** A value line of the exposition (its labels may add `le`, which prom-client's types leave out). */
type ExportedValue<L extends string> = Exported<L>['values'][number];

/** Options of {@link FastHistogram}. */
interface FastHistogramOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  /** Upper bounds, ascending. */
  buckets: readonly number[];
  registry: Registry;
}

/** A histogram whose label sets are bound once and observed cheaply. */
export class FastHistogram<L extends string> extends Histogram<L> {
  readonly #name: string;
  readonly #help: string;
  readonly #bounds: Float64Array;
  readonly #series: Series[] = [];

  constructor(opts: FastHistogramOptions<L>) {
    super({ name: opts.name, help: opts.help, labelNames: opts.labelNames, buckets: [...opts.buckets], registers: [] });
    this.#name = opts.name;
    this.#help = opts.help;
    this.#bounds = Float64Array.from(opts.buckets);
    opts.registry.registerMetric(this);
  }

  /** The observer of one label set; call it with a value (seconds) per event. */
  bind(labels: Record<L, string>): (value: number) => void {
    const series: Series = { labels: { ...labels }, counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 };
    this.#series.push(series);
    const bounds = this.#bounds;
    return (value) => {
      if (!(value >= 0)) return;
      let i = 0;
      while (i < bounds.length && value > bounds[i]!) i++;
      series.counts[i]!++;
      series.sum += value;
      series.count++;
    };
  }

  #values(): ExportedValue<L>[] {
    const out: ExportedValue<L>[] = [];
    const line = (labels: Record<string, string | number>, value: number, metricName: string) => out.push({ labels: labels as ExportedValue<L>['labels'], value, metricName });
    const bucket = `${this.#name}_bucket`;
    for (const s of this.#series) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.counts[i]!;
        line({ ...s.labels, le: this.#bounds[i]! }, acc, bucket);
      }
      line({ ...s.labels, le: '+Inf' }, s.count, bucket);
      line(s.labels, s.sum, `${this.#name}_sum`);
      line(s.labels, s.count, `${this.#name}_count`);
    }
    return out;
  }

  /** The registry's view (prom-client prefers this method when formatting). */
  async getForPromString() {
    return this.get();
  }

  override async get(): Promise<Exported<L>> {
    // prom-client's types name `type` with an enum; at run time (and in the exposition) it is the string.
    const metric = { name: this.#name, help: this.#help, type: 'histogram', aggregator: 'sum', values: this.#values() };
    return metric as unknown as Exported<L>;
  }

  override reset(): void {
    // prom-client's constructor resets before this class's fields exist.
    if (!(#series in this)) return;
    for (const s of this.#series) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
