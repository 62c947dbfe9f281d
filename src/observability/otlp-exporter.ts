/**
 * The gateway's OTLP/HTTP span exporter: batches go to a worker thread that encodes
 * them as OTLP/JSON and POSTs them.
 *
 * Why a thread: exporting on the main thread (the SDK's exporter, or any encoder and
 * HTTP client sharing the event loop with the proxy) slowed every proxied request by
 * far more than the export's own CPU time; in a thread of its own, the export shares
 * nothing with the request path but a message per batch.
 *
 * Rules: one request per batch; a batch that fails or outlasts the timeout is dropped
 * (the batch processor does not retry); the thread starts with the exporter (it loads
 * its HTTP client at once) and stops at shutdown, after the batches in flight are
 * answered.
 */
import { Worker } from 'node:worker_threads';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { toBatches, type ExportJob, type ExportResult, type ExporterTarget } from './otlp-json.js';

/** ExportResultCode of @opentelemetry/core: 0 success, 1 failed. */
type ExportResultLike = { code: 0 } | { code: 1; error: Error };

/** Exports span batches as OTLP/JSON over HTTP from a worker thread. */
export class OtlpJsonExporter implements SpanExporter {
  readonly #target: ExporterTarget;
  readonly #pending = new Map<number, (r: ExportResultLike) => void>();
  #worker: Worker | undefined;
  #next = 0;
  #stopped = false;

  constructor(target: ExporterTarget) {
    this.#target = target;
    // Started now, not on the first batch: loading the thread and its HTTP client is a
    // one-time cost that belongs to startup, not to the requests running at that moment.
    this.#thread();
  }

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL('./otlp-export-worker.js', import.meta.url), { workerData: this.#target });
    worker.unref();
    worker.on('message', (r: ExportResult) => {
      const done = this.#pending.get(r.id);
      this.#pending.delete(r.id);
      done?.(r.ok ? { code: 0 } : { code: 1, error: new Error(r.error ?? 'export failed') });
    });
    const failAll = (err: Error) => {
      for (const done of this.#pending.values()) done({ code: 1, error: err });
      this.#pending.clear();
      this.#worker = undefined;
    };
    worker.on('error', failAll);
    worker.on('exit', () => failAll(new Error('the export thread stopped')));
    this.#worker = worker;
    return worker;
  }

  export(spans: ReadableSpan[], done: (result: ExportResultLike) => void): void {
    if (this.#stopped) return done({ code: 1, error: new Error('the exporter is shut down') });
    const id = ++this.#next;
    this.#pending.set(id, done);
    this.#thread().postMessage({ id, batch: toBatches(spans) } satisfies ExportJob);
  }

  /** Resolves once every batch handed over is answered. */
  async forceFlush(): Promise<void> {
    const waiting = [...this.#pending.keys()];
    if (waiting.length === 0) return;
    await new Promise<void>((resolve) => {
      const check = () => (waiting.some((id) => this.#pending.has(id)) ? setTimeout(check, 10) : resolve());
      check();
    });
  }

  async shutdown(): Promise<void> {
    this.#stopped = true;
    await this.forceFlush();
    await this.#worker?.terminate();
    this.#worker = undefined;
  }
}
