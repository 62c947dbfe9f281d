/**
 * The few HTML pages the gateway renders itself: email discovery, the provider
 * chooser, refusals and errors.
 *
 * Rules:
 * - no script and no external asset: one style block, allowed by its hash (computed
 *   once, here), so the Content-Security-Policy needs neither 'unsafe-inline' nor
 *   any script source;
 * - every dynamic value is escaped; callers that pass `html` build it with
 *   {@link escapeHtml};
 * - accessible without effort from callers: `lang`, a banner and a main landmark,
 *   one `h1`, visible focus, WCAG AA contrast in light and dark schemes, targets of
 *   at least 44 px, borders that survive forced-colours mode;
 * - never framed, never sniffed, never cached, no referrer.
 */
import { createHash } from 'node:crypto';
import type { FastifyReply } from 'fastify';

const STYLE = `:root{color-scheme:light dark;--bg:#f3f4f6;--card:#fff;--text:#111827;--muted:#374151;--line:#6b7280;--accent:#1d4ed8;--accent-text:#fff;--focus:#b45309;--error:#b91c1c;--notice-bg:#fffbeb;--notice-line:#b45309}
@media (prefers-color-scheme:dark){:root{--bg:#111827;--card:#1f2937;--text:#f9fafb;--muted:#d1d5db;--line:#9ca3af;--accent:#2563eb;--accent-text:#fff;--focus:#fbbf24;--error:#fca5a5;--notice-bg:#422006;--notice-line:#fbbf24}}
*{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;font-size:100%;line-height:1.5;background:var(--bg);color:var(--text)}
body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;padding:1rem}
header{width:100%;max-width:30rem;margin:8vh 0 .75rem;color:var(--muted);font-size:.95rem;font-weight:600;letter-spacing:.01em}
header p{margin:0}
main{width:100%;max-width:30rem;background:var(--card);padding:2rem;border-radius:.5rem;border-top:.25rem solid var(--accent);box-shadow:0 1px 3px rgba(0,0,0,.2)}
main.problem{border-top-color:var(--error)}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}
p{margin:0 0 1rem}
.status{color:var(--error);font-weight:600;font-size:.9rem;margin:-.5rem 0 1rem}
.note{color:var(--muted)}
[role=alert]{color:var(--text);background:var(--notice-bg);border-left:.25rem solid var(--notice-line);padding:.75rem 1rem}
label{display:block;font-weight:600;margin:0 0 .375rem}
input[type=email],input[type=text]{display:block;width:100%;min-height:2.75rem;padding:.5rem .75rem;font:inherit;color:var(--text);background:var(--card);border:1px solid var(--line);border-radius:.25rem}
button,.button{display:inline-block;min-height:2.75rem;margin-top:1rem;padding:.5rem 1.25rem;font:inherit;font-weight:600;line-height:1.6;color:var(--accent-text);background:var(--accent);border:2px solid transparent;border-radius:.25rem;text-decoration:none;text-align:center;cursor:pointer}
button:hover,.button:hover{text-decoration:underline}
a{color:var(--accent)}
@media (prefers-color-scheme:dark){a:not(.button){color:#93c5fd}}
a:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
ul.providers{list-style:none;margin:0;padding:0}
ul.providers li{margin:0 0 .75rem}
ul.providers .button{display:block;width:100%;margin:0}
.actions{margin:1.5rem 0 0}`;

/** The CSP source that allows exactly the style block above. */
const STYLE_SOURCE = `'sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}'`;

/**
 * The Content-Security-Policy of every page: nothing may load or run except the one
 * style block; never framed.
 *
 * `form-action` covers every redirect that follows a submission (Chromium enforces it
 * on the whole chain), and the email form's chain ends at the tenant's identity
 * provider (`POST /login` -> `/login/<tenant>` -> provider). So forms may lead to the
 * gateway and to where a provider may be: https, or http on loopback (the rule for
 * provider URLs).
 */
export const PAGE_CSP = [
  "default-src 'none'",
  `style-src ${STYLE_SOURCE}`,
  'img-src data:',
  "form-action 'self' https: http://localhost:* http://127.0.0.1:*",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Security headers sent with every page the gateway renders. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A page: title, a heading, paragraphs, an optional link and raw (already escaped) body. */
export interface Page {
  title: string;
  heading?: string;
  paragraphs?: string[];
  link?: { href: string; text: string };
  /** Trusted HTML built with `escapeHtml` by the caller. */
  html?: string;
  /** The organisation the page is about (e.g. `sso.display_name`); shown in the banner and the title. */
  tenantName?: string;
  /**
   * The HTTP status, when the page reports a problem (4xx, 5xx): the page is marked
   * as one and shows the code, which users can quote to their administrator.
   * `sendPage` sets it from its own status.
   */
  status?: number;
}

/** Shown in the banner when the page names no organisation. */
const PRODUCT = 'Single sign-on';

/** Renders a complete HTML document. */
export function renderPage(page: Page): string {
  const problem = page.status !== undefined && page.status >= 400;
  const paragraphs = (page.paragraphs ?? []).map((p) => `<p class="note">${escapeHtml(p)}</p>`).join('\n');
  const link = page.link ? `<p class="actions"><a href="${escapeHtml(page.link.href)}">${escapeHtml(page.link.text)}</a></p>` : '';
  const status = problem ? `<p class="status">Error ${page.status}</p>` : '';
  const title = page.tenantName ? `${page.title} · ${page.tenantName}` : page.title;
  const parts = [paragraphs, page.html ?? '', link].filter((s) => s !== '').join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="color-scheme" content="light dark">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
<p>${escapeHtml(page.tenantName ?? PRODUCT)}</p>
</header>
<main${problem ? ' class="problem"' : ''}>
<h1>${escapeHtml(page.heading ?? page.title)}</h1>
${status}${parts}
</main>
</body>
</html>
`;
}

/** Sends a rendered page with its status and the security headers. */
export function sendPage(reply: FastifyReply, status: number, page: Page): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(renderPage({ status, ...page }));
}
