/**
 * LemonLDAP::NG (Debian's liblemonldap-ng-portal-perl) as an independent OpenID
 * Connect provider for tests: its portal runs as a PSGI app under `plackup` on
 * 127.0.0.1, with its configuration, sessions and caches in a temporary folder.
 *
 * - Authentication is LemonLDAP::NG's Demo backend (dwho/dwho, rtyler/rtyler,
 *   msmith/msmith); every user gets the `tenant` session attribute from `tenant`.
 * - One relying party per client, consent bypassed; claims `email`, `name`,
 *   `tenant_key` and `groups` are exported, and reach the ID token only with
 *   `forceClaims` (LemonLDAP::NG's default is userinfo only).
 * - `available()` says why it cannot run here (package missing), for a skip message.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

const PSGI = '/usr/share/lemonldap-ng/portal/htdocs/index.psgi';
const PLACKUP = '/usr/bin/plackup';
const TEMPLATES = '/usr/share/lemonldap-ng/portal/templates';

/** A relying party registered at the portal. */
export interface LlngClient {
  clientId: string;
  secret: string;
  redirectUris: string[];
  postLogoutUris?: string[];
  /** Put the exported claims in the ID token too ("Force claims to be returned in ID Token"). */
  forceClaims?: boolean;
}

/** A running portal. */
export interface Llng {
  /** `http://127.0.0.1:<port>/`, as its discovery document says. */
  issuer: string;
  /** Requests the portal saw, by path. */
  log: string[];
  close(): Promise<void>;
}

/** Why LemonLDAP::NG cannot run here, or undefined when it can. */
export function llngUnavailable(): string | undefined {
  for (const file of [PSGI, PLACKUP, TEMPLATES]) {
    if (!existsSync(file)) return `${file} is missing: install Debian's liblemonldap-ng-portal-perl and libplack-perl (.ci/run does)`;
  }
  return undefined;
}

function configuration(dir: string, portal: string, clients: LlngClient[], tenant: string): object {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rp: Record<string, object> = {};
  const exported: Record<string, object> = {};
  const extraClaims: Record<string, object> = {};
  clients.forEach((c, i) => {
    const key = `rp${i}`;
    rp[key] = {
      oidcRPMetaDataOptionsClientID: c.clientId,
      oidcRPMetaDataOptionsClientSecret: c.secret,
      oidcRPMetaDataOptionsRedirectUris: c.redirectUris.join(' '),
      oidcRPMetaDataOptionsPostLogoutRedirectUris: (c.postLogoutUris ?? []).join(' '),
      oidcRPMetaDataOptionsIDTokenSignAlg: 'RS256',
      oidcRPMetaDataOptionsBypassConsent: 1,
      oidcRPMetaDataOptionsIDTokenForceClaims: c.forceClaims ? 1 : 0,
      oidcRPMetaDataOptionsAccessTokenExpiration: 600,
      oidcRPMetaDataOptionsIDTokenExpiration: 600,
      oidcRPMetaDataOptionsRequirePKCE: 1,
      oidcRPMetaDataOptionsPublic: 0,
    };
    exported[key] = { email: 'mail', name: 'cn', tenant_key: 'tenant', groups: 'groups' };
    extraClaims[key] = { tenant: 'tenant_key groups' };
  });
  const store = (name: string) => join(dir, name);
  for (const d of ['sessions', 'sessions/lock', 'psessions', 'psessions/lock', 'cache', 'notifications']) mkdirSync(store(d), { recursive: true });
  return {
    cfgNum: 1,
    cfgAuthor: 'tenant-gate tests',
    cfgDate: Math.floor(Date.now() / 1000),
    portal,
    domain: '127.0.0.1',
    cookieName: 'lemonldap',
    securedCookie: 0,
    authentication: 'Demo',
    userDB: 'Same',
    passwordDB: 'Demo',
    registerDB: 'Demo',
    demoExportedVars: { cn: 'cn', mail: 'mail', uid: 'uid' },
    exportedVars: {},
    macros: { tenant: JSON.stringify(tenant), _whatToTrace: '$uid' },
    groups: { staff: '1' },
    globalStorage: 'Apache::Session::File',
    globalStorageOptions: { Directory: store('sessions'), LockDirectory: store('sessions/lock'), generateModule: 'Lemonldap::NG::Common::Apache::Session::Generate::SHA256' },
    persistentStorage: 'Apache::Session::File',
    persistentStorageOptions: { Directory: store('psessions'), LockDirectory: store('psessions/lock') },
    localSessionStorage: 'Cache::FileCache',
    localSessionStorageOptions: { cache_root: store('cache'), namespace: 'lemonldap-ng-sessions', default_expires_in: 600, directory_umask: '007', cache_depth: 3 },
    notificationStorage: 'File',
    notificationStorageOptions: { dirName: store('notifications') },
    notification: 0,
    loginHistoryEnabled: 0,
    locationRules: {},
    exportedHeaders: {},
    reloadUrls: {},
    applicationList: {},
    issuerDBOpenIDConnectActivation: 1,
    oidcServiceIgnoreScopeForClaims: 1,
    oidcServiceKeyIdSig: randomBytes(6).toString('hex'),
    oidcServicePrivateKeySig: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    oidcServicePublicKeySig: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    oidcServiceAllowAuthorizationCodeFlow: 1,
    oidcRPMetaDataOptions: rp,
    oidcRPMetaDataExportedVars: exported,
    oidcRPMetaDataOptionsExtraClaims: extraClaims,
    requireToken: 0,
    checkXSS: 1,
  };
}

/** Starts a portal on a free loopback port; resolves once its discovery document answers. */
export async function startLlng(opts: { clients: LlngClient[]; tenant: string; timeoutMs?: number }): Promise<Llng> {
  const dir = mkdtempSync(join(tmpdir(), 'tenant-gate-llng-'));
  const port = await freePort();
  const portal = `http://127.0.0.1:${port}/`;
  const confDir = join(dir, 'conf');
  mkdirSync(confDir);
  writeFileSync(join(confDir, 'lmConf-1.json'), JSON.stringify(configuration(dir, portal, opts.clients, opts.tenant), null, 1));
  const ini = join(dir, 'lemonldap-ng.ini');
  writeFileSync(
    ini,
    [
      '[all]',
      'logLevel = warn',
      'checkTime = 1',
      '[configuration]',
      'type = File',
      `dirName = ${confDir}`,
      '[portal]',
      'staticPrefix = /static',
      `templateDir = ${TEMPLATES}`,
      'languages = en',
      '',
    ].join('\n'),
  );
  const log: string[] = [];
  const child: ChildProcess = spawn(PLACKUP, ['--host', '127.0.0.1', '--port', String(port), '-E', 'deployment', PSGI], {
    env: { ...process.env, LLNG_DEFAULTCONFFILE: ini },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  const close = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) {
      await close();
      throw new Error(`the LemonLDAP::NG portal exited: ${log.join('').slice(-2000)}`);
    }
    const res = await fetch(`${portal}.well-known/openid-configuration`).catch(() => undefined);
    if (res?.ok) {
      const body = (await res.json()) as { issuer: string };
      return { issuer: body.issuer, log, close };
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(`the LemonLDAP::NG portal did not answer in time: ${log.join('').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Cookies for one host, enough for the portal. */
function cookieHeader(jar: Map<string, string>): string {
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}

function keep(jar: Map<string, string>, res: Response): void {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair!.indexOf('=');
    if (eq > 0) jar.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
  }
}

/**
 * Logs a Demo user in at the portal the way a browser would, from an authorization
 * URL; stops at the redirect to the relying party (never requested).
 */
export async function loginAtLlng(authorizationUrl: string, user: string, password = user): Promise<{ callbackUrl: string }> {
  const start = new URL(authorizationUrl);
  const jar = new Map<string, string>();
  let url = start;
  let method: 'GET' | 'POST' = 'GET';
  let body: URLSearchParams | undefined;
  for (let step = 0; step < 10; step++) {
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: { accept: 'text/html', ...(jar.size ? { cookie: cookieHeader(jar) } : {}), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body,
    });
    keep(jar, res);
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const next = new URL(res.headers.get('location') ?? '', url);
      if (next.origin !== start.origin) return { callbackUrl: next.href };
      url = next;
      method = 'GET';
      body = undefined;
      continue;
    }
    const html = await res.text();
    const form = /<form[^>]*id="lform"[\s\S]*?<\/form>/.exec(html)?.[0] ?? /<form[\s\S]*?<\/form>/.exec(html)?.[0];
    if (!form || !/name="user"/.test(form)) throw new Error(`no login form at ${url.pathname} (HTTP ${res.status}): ${html.slice(0, 300)}`);
    const fields = new URLSearchParams();
    for (const m of form.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
      const name = /name="([^"]+)"/.exec(m[0])?.[1];
      const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
      if (name) fields.set(name, value.replace(/&amp;/g, '&'));
    }
    fields.set('user', user);
    fields.set('password', password);
    const action = /<form[^>]*action="([^"]*)"/.exec(form)?.[1] ?? '#';
    url = new URL(action === '#' || action === '' ? url.href : action.replace(/&amp;/g, '&'), url);
    method = 'POST';
    body = fields;
  }
  throw new Error('too many steps at the LemonLDAP::NG portal');
}
