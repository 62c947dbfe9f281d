/**
 * End to end, in a real headless Chromium: the demo stack (gateway, two tenant
 * identity providers, the demo webapp) driven the way a person would.
 *
 * - vanity host -> identity provider login form -> back on the page asked for, with
 *   the identity the webapp received;
 * - logout, at the gateway and at the provider;
 * - email discovery (unknown address, a one-provider tenant, a tenant with a chooser);
 * - refusals by policy (tenant claim of the other tenant, no mapped group);
 * - the gateway's own pages: lang, landmarks, labels, keyboard order, contrast, no
 *   script, the CSP and the other security headers, styles allowed by their hash.
 *
 * Nothing leaves loopback: every other request is aborted and reported. Screenshots
 * of each page go to artifacts/e2e/. Without Chromium at /usr/bin/chromium the test
 * is skipped.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { startDemoStack, type DemoStack, type DemoTenant } from '../../demo/stack.js';

type Test = import('tap').Test;

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../artifacts/e2e/', import.meta.url));
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Belt and braces: only loopback names resolve at all.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE *.localhost, EXCLUDE 127.0.0.1',
];

/** What every page the gateway renders must satisfy, checked in the browser. */
async function checkGatewayPage(t: Test, page: Page, response: Response | null, what: string, card = 'rgb(255, 255, 255)'): Promise<void> {
  t.ok(response, `${what}: a response`);
  const headers = response?.headers() ?? {};
  const csp = headers['content-security-policy'] ?? '';
  t.match(csp, /default-src 'none'/, `${what}: CSP default-src 'none'`);
  t.match(csp, /frame-ancestors 'none'/, `${what}: CSP frame-ancestors 'none'`);
  t.match(csp, /style-src 'sha256-[A-Za-z0-9+/]+=*'/, `${what}: styles allowed by hash`);
  t.notMatch(csp, /unsafe-inline|unsafe-eval|script-src/, `${what}: no inline or other script allowed`);
  t.equal(headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
  t.equal(headers['x-frame-options'], 'DENY', `${what}: not framed`);
  const facts = await page.evaluate(() => {
    const luminance = (rgb: number[]) => {
      const [r, g, b] = rgb.map((v) => {
        const c = v / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
    };
    const parse = (s: string) => (s.match(/[\d.]+/g) ?? []).map(Number);
    const background = (el: Element | null): number[] => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3]! > 0)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const contrast = (el: Element) => {
      const fg = luminance(parse(getComputedStyle(el).color).slice(0, 3));
      const bg = luminance(background(el));
      return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    };
    const texts = [...document.querySelectorAll('h1, p, label, a, button')].filter((e) => (e.textContent ?? '').trim() !== '');
    const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter(
      (e) => !((e as HTMLInputElement).labels?.length || e.getAttribute('aria-label')),
    );
    return {
      lang: document.documentElement.lang,
      title: document.title,
      mains: document.querySelectorAll('main').length,
      banners: document.querySelectorAll('body > header').length,
      h1s: document.querySelectorAll('h1').length,
      scripts: document.querySelectorAll('script').length,
      inlineStyles: document.querySelectorAll('[style]').length,
      unlabelled: unlabelled.map((e) => e.outerHTML),
      lowContrast: texts.filter((e) => contrast(e) < 4.5).map((e) => `${e.tagName} ${contrast(e).toFixed(2)}: ${e.textContent}`),
      styled: getComputedStyle(document.querySelector('main')!).backgroundColor,
    };
  });
  t.equal(facts.lang, 'en', `${what}: lang`);
  t.ok(facts.title.length > 0, `${what}: a title`);
  t.equal(facts.mains, 1, `${what}: one main landmark`);
  t.equal(facts.banners, 1, `${what}: one banner`);
  t.equal(facts.h1s, 1, `${what}: one h1`);
  t.equal(facts.scripts, 0, `${what}: no script`);
  t.equal(facts.inlineStyles, 0, `${what}: no style attributes`);
  t.same(facts.unlabelled, [], `${what}: every field has a label`);
  t.same(facts.lowContrast, [], `${what}: text contrast at least 4.5:1`);
  t.equal(facts.styled, card, `${what}: the style block was applied (its hash matches)`);
}

/**
 * Status of a script's request (not a page navigation) to the gateway, sent to
 * 127.0.0.1 with the Host of `origin` (Node does not resolve *.localhost).
 */
function apiStatus(origin: string, path: string, cookie?: string): Promise<number> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    request(
      { host: '127.0.0.1', port: url.port, path, setHost: false, headers: { host: url.host, accept: 'application/json', ...(cookie ? { cookie } : {}) } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    )
      .on('error', reject)
      .end();
  });
}

/** The Cookie header the browser would send to `origin`. */
async function cookieHeader(context: BrowserContext, origin: string): Promise<string> {
  return (await context.cookies(origin)).map((c) => `${c.name}=${c.value}`).join('; ');
}

/** The value the webapp shows for an X-Auth-Request-* header. */
async function shown(page: Page, header: string): Promise<string> {
  return ((await page.locator('tr', { hasText: header }).locator('td').textContent()) ?? '').trim();
}

if (!existsSync(CHROMIUM)) {
  t.skip('Chromium not installed at /usr/bin/chromium: browser tests skipped', () => {});
} else {
  const { chromium } = await import('playwright-core');
  mkdirSync(ARTIFACTS, { recursive: true });
  // Each subtest has its own browser context: they run side by side.
  t.jobs = 3;

  let stack: DemoStack;
  let browser: Browser;
  let acme: DemoTenant;
  let globex: DemoTenant;
  // Chromium's own files (crash reports, certificate store) go to a temporary home;
  // each context below is a fresh profile.
  const home = mkdtempSync(join(tmpdir(), 'tenant-gate-e2e-'));

  t.before(async () => {
    stack = await startDemoStack({ port: 0, adminPort: 0, logLevel: 'silent' });
    acme = stack.tenants.find((x) => x.id === 'acme')!;
    globex = stack.tenants.find((x) => x.id === 'globex')!;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, env: { ...process.env, HOME: home } });
  });
  t.teardown(async () => {
    await browser?.close();
    await stack?.close();
    rmSync(home, { recursive: true, force: true });
  });

  /**
   * A fresh browser profile: no cookies; every request off loopback is aborted and
   * every CSP violation recorded, and both are checked by `done`.
   */
  async function freshContext(t: Test, colorScheme: 'light' | 'dark' = 'light'): Promise<{ context: BrowserContext; page: Page; done(): void }> {
    const context = await browser.newContext({ viewport: { width: 960, height: 800 }, colorScheme, locale: 'en-GB' });
    t.teardown(() => context.close());
    const offLoopback: string[] = [];
    const cspViolations: string[] = [];
    await context.route('**/*', (route) => {
      const host = new URL(route.request().url()).hostname;
      if (host === 'localhost' || host.endsWith('.localhost') || host === '127.0.0.1') return route.continue();
      offLoopback.push(route.request().url());
      return route.abort();
    });
    context.on('console', (msg) => {
      if (/Content.Security.Policy/i.test(msg.text())) cspViolations.push(`${msg.page()?.url()}: ${msg.text()}`);
    });
    const page = await context.newPage();
    return {
      context,
      page,
      done() {
        t.same(offLoopback, [], 'no request left loopback');
        t.same(cspViolations, [], 'the browser reported no CSP violation');
      },
    };
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  async function signInAtIdp(page: Page, tenant: DemoTenant, login: string | undefined): Promise<void> {
    await page.waitForURL((u) => u.href.startsWith(`${tenant.issuer}/login-actions/`));
    if (login !== undefined) await page.getByLabel('Username or email').fill(login);
    await page.getByLabel('Password').fill('any password at all');
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  t.test('vanity host -> identity provider -> back with the identity; logout', async (t) => {
    const { context, page, done } = await freshContext(t);
    await page.goto(`${acme.vanityOrigin}/projects/7?tab=runs`);
    await page.waitForURL((u) => u.href.startsWith(`${acme.issuer}/login-actions/`));
    t.match(await page.locator('h1').textContent(), /Sign in/, "at acme's identity provider");
    t.match(await page.locator('header').textContent(), /Acme Corp/);
    await shot(page, '01-idp-login');

    await signInAtIdp(page, acme, 'alice');
    await page.waitForURL(`${acme.vanityOrigin}/projects/7?tab=runs`);
    t.pass('back on the page first asked for');
    t.equal(await page.locator('h1').textContent(), 'Signed in as Alice Admin');
    t.equal(await shown(page, 'X-Auth-Request-User'), 'alice@acme.com');
    t.equal(await shown(page, 'X-Auth-Request-Tenant'), 'acme');
    t.equal(await shown(page, 'X-Auth-Request-Groups'), 'Admins,Users');
    t.equal(await shown(page, 'X-Auth-Request-Admin'), 'true');
    await shot(page, '02-webapp-identity');
    const cookies = await context.cookies(acme.vanityOrigin);
    t.ok(cookies.find((c) => c.name === 'tg_session' && c.httpOnly && c.sameSite === 'Lax'), 'an HttpOnly, SameSite=Lax session cookie');
    const signedIn = await cookieHeader(context, acme.vanityOrigin);
    t.equal(await apiStatus(acme.vanityOrigin, '/api/whoami', signedIn), 200, 'the session works for API calls');

    await page.getByRole('link', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.href.startsWith(`${acme.issuer}/protocol/openid-connect/logout`));
    t.match(await page.locator('h1').textContent(), /Sign out of Acme Corp/, "at the provider's sign-out page");
    await shot(page, '03-idp-logout');
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL((u) => u.href.startsWith(`${acme.issuer}/login-actions/`));
    t.pass('back to the tenant login, which asks at the provider again');
    t.notOk((await context.cookies(acme.vanityOrigin)).some((c) => c.name === 'tg_session'), 'the session cookie is gone');
    t.equal(await apiStatus(acme.vanityOrigin, '/api/whoami', signedIn), 401, 'and the old one is dead at the gateway');
    await page.goto(`${acme.vanityOrigin}/`);
    await page.waitForURL((u) => u.href.startsWith(`${acme.issuer}/login-actions/`));
    t.pass('the vanity host sends to the login again');
    done();
  });

  t.test('signing out at the provider alone ends the gateway session (back-channel logout)', async (t) => {
    const { context, page, done } = await freshContext(t);
    await page.goto(`${acme.vanityOrigin}/`);
    await signInAtIdp(page, acme, 'bob');
    await page.waitForURL(`${acme.vanityOrigin}/`);
    const signedIn = await cookieHeader(context, acme.vanityOrigin);
    t.equal(await apiStatus(acme.vanityOrigin, '/api/whoami', signedIn), 200, 'signed in');
    await page.goto(acme.endSessionUrl);
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForLoadState();
    t.equal(await apiStatus(acme.vanityOrigin, '/api/whoami', signedIn), 401, "the gateway session ended although the browser never came back to the gateway");
    done();
  });

  t.test('email discovery: a neutral answer, then a tenant with one provider', async (t) => {
    const { page, done } = await freshContext(t);
    const form = await page.goto(`${stack.publicUrl}/login`);
    t.equal(form?.status(), 200);
    await checkGatewayPage(t, page, form, 'discovery form');
    await shot(page, '04-discovery');

    // Keyboard only: the field has focus, Tab reaches the button, Enter submits.
    t.equal(await page.evaluate(() => document.activeElement?.id), 'email', 'the email field has focus');
    await page.keyboard.type('someone@unknown.example');
    await page.keyboard.press('Tab');
    t.equal(await page.evaluate(() => document.activeElement?.tagName), 'BUTTON', 'Tab goes to the button');
    const [answer] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    t.equal(answer?.status(), 200, 'an unknown domain gets the form again');
    t.match(await page.getByRole('alert').textContent(), /could not find single sign-on/);
    t.notMatch(await page.content(), /acme|globex/i, 'no tenant is named');
    await checkGatewayPage(t, page, answer, 'discovery, unknown address');
    await shot(page, '05-discovery-unknown');

    await page.getByLabel('Work email').fill('bob@acme.com');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL((u) => u.href.startsWith(`${acme.issuer}/login-actions/`));
    t.equal(await page.getByLabel('Username or email').inputValue(), 'bob@acme.com', 'the email reaches the provider as login_hint');
    await signInAtIdp(page, acme, undefined);
    await page.waitForURL(`${stack.publicUrl}/`);
    t.equal(await shown(page, 'X-Auth-Request-User'), 'bob@acme.com', 'signed in on the base host');
    t.equal(await shown(page, 'X-Auth-Request-Groups'), 'Users');
    t.equal(await shown(page, 'X-Auth-Request-Admin'), 'false');
    done();
  });

  t.test('email discovery: a tenant with two providers gets a chooser', async (t) => {
    const { page, done } = await freshContext(t);
    await page.goto(`${stack.publicUrl}/login`);
    await page.getByLabel('Work email').fill('hank@globex.com');
    const [chooser] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/login/globex'),
      page.getByRole('button', { name: 'Continue' }).click(),
    ]);
    await page.waitForLoadState();
    t.equal(chooser.status(), 200, 'globex has two providers: a chooser');
    await checkGatewayPage(t, page, chooser, 'provider chooser');
    t.same(await page.getByRole('link').allTextContents(), ['Globex SSO', 'Globex contractors']);
    await shot(page, '06-chooser');
    await page.getByRole('link', { name: 'Globex SSO' }).click();
    await signInAtIdp(page, globex, undefined);
    await page.waitForURL(`${stack.publicUrl}/`);
    t.equal(await shown(page, 'X-Auth-Request-User'), 'hank@globex.com');
    t.equal(await shown(page, 'X-Auth-Request-Tenant'), 'globex');
    t.equal(await shown(page, 'X-Auth-Request-Groups'), 'Staff');
    done();
  });

  const refusals: Array<[string, string, RegExp, string]> = [
    ['mallory', 'a tenant claim naming the other tenant', /isn.t part of this tenant/, '07-refusal-other-tenant'],
    ['carol', 'no mapped group', /group/i, '08-refusal-no-group'],
  ];
  for (const [login, why, message, name] of refusals) {
    t.test(`refused by policy (${why}): a 403 page and no session`, async (t) => {
      const { context, page, done } = await freshContext(t);
      await page.goto(`${acme.vanityOrigin}/`);
      const [callback] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname.startsWith('/callback_')),
        signInAtIdp(page, acme, login),
      ]);
      await page.waitForLoadState();
      t.equal(callback.status(), 403, `${login} refused`);
      t.equal(await page.locator('h1').textContent(), 'Access denied');
      t.match(await page.locator('main').textContent(), message);
      await checkGatewayPage(t, page, callback, `refusal of ${login}`);
      await shot(page, name);
      t.notOk((await context.cookies(acme.vanityOrigin)).some((c) => c.name === 'tg_session'), `${login} has no session cookie`);
      t.equal(await apiStatus(acme.vanityOrigin, '/api/whoami', await cookieHeader(context, acme.vanityOrigin)), 401, 'API calls are refused');
      done();
    });
  }

  t.test('unknown organisation and unknown host, in light and dark schemes', async (t) => {
    const { page, done } = await freshContext(t);
    const missing = await page.goto(`${stack.publicUrl}/login/nope`);
    t.equal(missing?.status(), 404);
    await checkGatewayPage(t, page, missing, 'unknown organisation');
    await shot(page, '09-unknown-organisation');
    const host = await page.goto(`http://nope.localhost:${stack.port}/`);
    t.equal(host?.status(), 421);
    await checkGatewayPage(t, page, host, 'unknown host');
    await shot(page, '10-unknown-host');
    done();

    const dark = await freshContext(t, 'dark');
    const darkPage = await dark.page.goto(`${stack.publicUrl}/login/nope`);
    await checkGatewayPage(t, dark.page, darkPage, 'unknown organisation, dark', 'rgb(31, 41, 55)');
    await shot(dark.page, '11-dark-scheme');
    dark.done();
  });
}
