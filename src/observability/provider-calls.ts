/**
 * Every request the gateway sends to an identity provider: its duration by tenant,
 * call and outcome, and with tracing a client span whose context goes out in
 * `traceparent`.
 *
 * Rules: an outcome is an error when no response came or the provider answered 5xx;
 * the span names the tenant, the call and the provider's host, never the URL's query,
 * a request body or a response.
 */
import { SpanStatusCode } from '@opentelemetry/api';
import type { Metrics, ProviderCall } from './metrics.js';
import { SpanKind, type Tracing } from './tracing.js';

/** Sends one provider request through `send`, observing it. */
export type ProviderFetchHook = (
  tenant: string | undefined,
  call: ProviderCall,
  url: string,
  init: RequestInit,
  send: (init: RequestInit) => Promise<Response>,
) => Promise<Response>;

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

/** The hook the client registry calls for every provider request. */
export function providerCallHook(metrics: Metrics, tracing: Tracing): ProviderFetchHook {
  return async (tenant, call, url, init, send) => {
    const started = performance.now();
    let ok = false;
    const span = tracing.enabled
      ? tracing.startChild(`provider ${call}`, SpanKind.CLIENT, { 'tenant_gate.tenant': tenant ?? '', 'tenant_gate.provider_call': call, 'server.address': hostOf(url) })
      : undefined;
    try {
      if (span) {
        const headers = new Headers(init.headers);
        tracing.inject(span, headers);
        init = { ...init, headers };
      }
      const res = await send(init);
      ok = res.status < 500;
      span?.setAttribute('http.response.status_code', res.status);
      return res;
    } finally {
      metrics.providerCall(tenant, call, ok, (performance.now() - started) / 1000);
      if (span) {
        if (!ok) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      }
    }
  };
}
