/**
 * The span export thread: receives finished spans as plain data, writes OTLP/JSON and
 * POSTs it to the traces URL. Started by ./otlp-exporter.ts; nothing runs at import
 * unless this file is a worker's entry.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { encodeBatch, type ExportJob, type ExportResult, type ExporterTarget } from './otlp-json.js';

if (!isMainThread && parentPort) {
  const port = parentPort;
  const target = workerData as ExporterTarget;
  // Loads fetch's implementation now (a data: URL needs no network).
  void fetch('data:,').then((r) => r.arrayBuffer()).catch(() => undefined);
  port.on('message', (job: ExportJob) => {
    fetch(target.url, {
      method: 'POST',
      headers: { ...target.headers, 'content-type': 'application/json' },
      body: encodeBatch(job.batch),
      signal: AbortSignal.timeout(target.timeoutMs),
    }).then(
      async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        port.postMessage({ id: job.id, ok: res.ok, ...(res.ok ? {} : { error: `OTLP receiver answered ${res.status}` }) } satisfies ExportResult);
      },
      (err: unknown) => port.postMessage({ id: job.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies ExportResult),
    );
  });
}
