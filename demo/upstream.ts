/**
 * The demo's web application: it trusts the gateway in front of it and shows the
 * identity it received in the X-Auth-Request-* headers, as a page with a sign-out link
 * (and as JSON under /api/).
 *
 * It listens on loopback only: the gateway is its sole client.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { IDENTITY_HEADERS } from '../src/proxy/identity-headers.js';

;

/** A running demo application. */
export interface DemoUpstream {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  close(): Promise<void>;
}

const STYLE = `*{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;line-height:1.5;background:#f8fafc;color:#0f172a}
body{margin:0}
header{display:flex;justify-content:space-between;align-items:center;gap:1rem;background:#0f172a;color:#fff;padding:.75rem 1.5rem}
header p{margin:0;font-weight:700}
header a{color:#fff;font-weight:600}
main{max-width:44rem;margin:2rem auto;padding:0 1.5rem}
h1{font-size:1.6rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}
p{margin:0 0 1rem}
.badge{display:inline-block;padding:.1rem .6rem;border-radius:1rem;background:#e0e7ff;color:#1e3a8a;font-weight:600;font-size:.9rem;margin:0 .3rem .3rem 0}
.badge.admin{background:#fef3c7;color:#78350f}
table{width:100%;border-collapse:collapse;background:#fff;margin:0 0 1rem}th,td{text-align:left;padding:.5rem .75rem;border:1px solid #cbd5e1;vertical-align:top}
th{background:#f1f5f9;font-weight:600}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em;word-break:break-all}
a{color:#1d4ed8}
a:focus-visible{outline:3px solid #b45309;outline-offset:2px}`;

const CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

function esc(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** What the application knows about the user, from the gateway's headers only. */
function identityOf(headers: IncomingHttpHeaders): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const name of IDENTITY_HEADERS) {
    const v = header(headers, name);
    if (v !== undefined) out[name] = v;
  }
  return out['x-auth-request-user'] ? out : undefined;
}

function page(req: IncomingMessage): string {
  const identity = identityOf(req.headers);
  const host = header(req.headers, 'x-forwarded-host') ?? header(req.headers, 'host') ?? '';
  const path = req.url ?? '/';
  const user = identity?.['x-auth-request-user'] ?? '';
  const name = identity?.['x-auth-request-name'] || user;
  const groups = (identity?.['x-auth-request-groups'] ?? '').split(',').filter(Boolean);
  const admin = identity?.['x-auth-request-admin'] === 'true';
  const rows = IDENTITY_HEADERS.map(
    (h) => `<tr><th scope="row"><code>${esc(h.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase()))}</code></th><td><code>${esc(identity?.[h] ?? '(not sent)')}</code></td></tr>`,
  ).join('\n');
  const body = identity
    ? `<h1>Signed in as ${esc(name)}</h1>
<p>Tenant <strong>${esc(identity['x-auth-request-tenant'] ?? '')}</strong>, email <strong>${esc(identity['x-auth-request-email'] || '(none)')}</strong>.</p>
<p>${groups.map((g) => `<span class="badge">${esc(g)}</span>`).join('')}${admin ? '<span class="badge admin">Administrator</span>' : ''}${groups.length === 0 && !admin ? 'No groups.' : ''}</p>`
    : `<h1>No identity received</h1><p>This request reached the application without the gateway's identity headers.</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo webapp${identity ? ` · ${esc(name)}` : ''}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><p>Demo webapp</p>${identity ? '<a href="/logout">Sign out</a>' : ''}</header>
<main>
${body}
<h2 id="received">What the application received</h2>
<table aria-labelledby="received">
<tbody>
${rows}
<tr><th scope="row">Host</th><td><code>${esc(host)}</code></td></tr>
<tr><th scope="row">Path</th><td><code>${esc(path)}</code></td></tr>
</tbody>
</table>
<p><a href="/projects/42?tab=experiments">Another page</a> · <a href="/api/whoami">The same as JSON</a></p>
</main>
</body>
</html>
`;
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const path = (req.url ?? '/').split('?')[0]!;
  if (path === '/api' || path.startsWith('/api/')) {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`${JSON.stringify({ identity: identityOf(req.headers) ?? null, path: req.url }, null, 2)}\n`);
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : page(req));
}

/** Starts the demo application on 127.0.0.1 (port 0: chosen by the system). */
export async function startDemoUpstream(port = 0): Promise<DemoUpstream> {
  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
