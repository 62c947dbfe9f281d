/**
 * The few HTML pages the gateway renders itself: plain, accessible, no script, no
 * external assets. Every dynamic value is escaped.
 */
import type { FastifyReply } from 'fastify';

/** Security headers sent with every page the gateway renders. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
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
}

const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1b1d21;margin:0}
main{max-width:28rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.4rem;margin-top:0}label{display:block;font-weight:600;margin:1rem 0 .3rem}
input[type=email]{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #6b7280;border-radius:4px}
button,.button{display:inline-block;margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem;background:#1d4ed8;color:#fff;border:0;border-radius:4px;text-decoration:none;cursor:pointer}
button:focus,.button:focus,input:focus,a:focus{outline:3px solid #f59e0b;outline-offset:2px}
a{color:#1d4ed8}.note{color:#374151}ul.providers{list-style:none;padding:0}ul.providers li{margin:.5rem 0}`;

/** Renders a complete HTML document. */
export function renderPage(page: Page): string {
  const paragraphs = (page.paragraphs ?? []).map((p) => `<p class="note">${escapeHtml(p)}</p>`).join('\n');
  const link = page.link ? `<p><a href="${escapeHtml(page.link.href)}">${escapeHtml(page.link.text)}</a></p>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(page.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(page.heading ?? page.title)}</h1>
${paragraphs}
${page.html ?? ''}
${link}
</main>
</body>
</html>
`;
}

/** Sends a rendered page with its status and the security headers. */
export function sendPage(reply: FastifyReply, status: number, page: Page): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(renderPage(page));
}
