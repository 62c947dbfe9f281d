/**
 * A raw HTTP/1.1 client over a TCP socket, for hostile inputs that node:http or fetch
 * would refuse to send or would normalise (control characters, non-ASCII bytes,
 * absolute-form targets, duplicate or giant headers).
 *
 * The request is written byte for byte as given; every response on the connection is
 * read until the server closes it (requests carry `Connection: close`), so a second
 * request smuggled into the first one is seen too.
 */
import net from 'node:net';

/** One response read from the connection. */
export interface RawResponse {
  status: number;
  /** Header names lower-cased; repeated headers keep every value. */
  headers: Record<string, string[]>;
  body: Buffer;
}

/** What happened on one connection. */
export interface RawExchange {
  responses: RawResponse[];
  /** The server closed the connection with bytes it never finished (truncated response). */
  truncated: boolean;
  /** No complete answer within the time limit. */
  timedOut: boolean;
  /** A socket error other than a reset after the last response. */
  error?: string;
  ms: number;
}

/** Builds the bytes of a request: request line, headers in the order given, body. */
export function rawRequestBytes(opts: {
  method?: string;
  target: string;
  headers: Array<[string, string]>;
  body?: string | Buffer;
  /** Encoding of the request line and headers: `latin1` keeps U+0000-U+00FF as single bytes, `utf8` writes UTF-8. */
  encoding?: 'latin1' | 'utf8';
}): Buffer {
  const enc = opts.encoding ?? 'utf8';
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body, 'utf8');
  const lines = [`${opts.method ?? 'GET'} ${opts.target} HTTP/1.1`, ...opts.headers.map(([k, v]) => `${k}: ${v}`)];
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, enc);
  return body ? Buffer.concat([head, body]) : head;
}

function parseHead(text: string): { status: number; headers: Record<string, string[]> } | undefined {
  const [statusLine, ...lines] = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (!m) return undefined;
  const headers: Record<string, string[]> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    (headers[name] ??= []).push(line.slice(colon + 1).trim());
  }
  return { status: Number(m[1]), headers };
}

/** Parses as many complete responses as `buf` holds; returns them and the unread rest. */
function parseResponses(buf: Buffer, opts: { headRequest?: boolean; closed: boolean }): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let offset = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', offset, 'latin1');
    if (end < 0) break;
    const head = parseHead(buf.subarray(offset, end).toString('latin1'));
    if (!head) break;
    let cursor = end + 4;
    const noBody = opts.headRequest || head.status === 204 || head.status === 304 || (head.status >= 100 && head.status < 200);
    const length = head.headers['content-length']?.[0];
    const chunked = /chunked/i.test(head.headers['transfer-encoding']?.join(',') ?? '');
    let body: Buffer;
    if (noBody) {
      body = Buffer.alloc(0);
    } else if (chunked) {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', cursor, 'latin1');
        if (lineEnd < 0) break;
        const size = Number.parseInt(buf.subarray(cursor, lineEnd).toString('latin1'), 16);
        if (!Number.isFinite(size)) break;
        if (size === 0) {
          const trailerEnd = buf.indexOf('\r\n\r\n', lineEnd, 'latin1');
          if (trailerEnd === lineEnd) {
            cursor = lineEnd + 4;
            complete = true;
          } else if (buf.length >= lineEnd + 4 && buf.subarray(lineEnd, lineEnd + 4).toString('latin1') === '\r\n\r\n') {
            cursor = lineEnd + 4;
            complete = true;
          }
          break;
        }
        if (buf.length < lineEnd + 2 + size + 2) break;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        cursor = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (length !== undefined) {
      const n = Number(length);
      if (buf.length < cursor + n) break;
      body = buf.subarray(cursor, cursor + n);
      cursor += n;
    } else {
      if (!opts.closed) break;
      body = buf.subarray(cursor);
      cursor = buf.length;
    }
    responses.push({ ...head, body });
    offset = cursor;
  }
  return { responses, rest: buf.subarray(offset) };
}

/**
 * Sends `bytes` to 127.0.0.1:`port` and reads every response until the server closes
 * the connection or `timeoutMs` passes. Never rejects.
 */
export function rawExchange(port: number, bytes: Buffer, opts: { timeoutMs?: number; headRequest?: boolean } = {}): Promise<RawExchange> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let done = false;
    const socket = net.connect({ host: '127.0.0.1', port });
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(quiet);
      socket.destroy();
      const all = Buffer.concat(chunks);
      const { responses, rest } = parseResponses(all, { closed: true, ...(opts.headRequest ? { headRequest: true } : {}) });
      resolve({
        responses,
        truncated: rest.length > 0,
        timedOut: timedOut && responses.length === 0,
        ...(error && !(responses.length > 0 && /ECONNRESET|EPIPE/.test(error)) ? { error } : {}),
        ms: Date.now() - started,
      });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    // Requests written (smuggled ones included): once that many complete answers are in,
    // a connection the server keeps open is not waited on.
    const expected = Math.max(1, bytes.toString('latin1').split(' HTTP/1.1\r\n').length - 1);
    let quiet: NodeJS.Timeout | undefined;
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const { responses, rest } = parseResponses(Buffer.concat(chunks), { closed: false, ...(opts.headRequest ? { headRequest: true } : {}) });
      // Interim answers (100 Continue) are followed by the real one.
      const final = responses.filter((r) => r.status >= 200).length;
      clearTimeout(quiet);
      if (final >= expected && rest.length === 0) finish(false);
      else if (final > 0 && rest.length === 0) quiet = setTimeout(() => finish(false), 300);
    });
    socket.on('end', () => finish(false));
    socket.on('close', () => finish(false));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.write(bytes, () => undefined);
  });
}

/** Runs `fn` over `items` with at most `limit` at a time; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}
