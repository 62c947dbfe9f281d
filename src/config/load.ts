/**
 * Loads the configuration: schema defaults <- YAML file <- environment, then validates
 * everything at once. Any problem stops the start with every error and its path.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { applyEnv, substituteVars } from './env.js';
import { ConfigSchema, type Config } from './schema.js';

/** Where the configuration comes from. */
export interface LoadOptions {
  /** YAML file path; falls back to `env.TENANT_GATE_CONFIG`. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Inline object used instead of a file (tests, embedding). */
  object?: Record<string, unknown>;
}

function ajvProblems(errors: ErrorObject[] | null | undefined): ConfigProblem[] {
  return (errors ?? []).map((e) => {
    let path = e.instancePath || '';
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      path = `${path}/${String((e.params as { additionalProperty: string }).additionalProperty)}`;
      message = 'unknown key';
    } else if (e.keyword === 'required') {
      path = `${path}/${String((e.params as { missingProperty: string }).missingProperty)}`;
      message = 'is required';
    } else if (e.keyword === 'anyOf' || e.keyword === 'enum') {
      message = 'is not one of the allowed values';
    }
    return { path: path || '/', message };
  });
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.path}\0${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return !(p.message === 'must match a schema in anyOf' || p.message.startsWith('must be equal to constant'));
  });
}

function checkHttpUrl(value: string | undefined, path: string, problems: ConfigProblem[], originOnly: boolean): void {
  if (value === undefined) return;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push({ path, message: 'is not a valid URL' });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') problems.push({ path, message: 'must be an http or https URL' });
  if (url.username || url.password) problems.push({ path, message: 'must not contain credentials' });
  if (originOnly && (url.pathname !== '/' || url.search || url.hash)) {
    problems.push({ path, message: 'must be an origin (scheme, host and port only)' });
  }
}

function isCidrOrIp(value: string): boolean {
  const [addr, bits, extra] = value.split('/');
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

function semanticChecks(c: Config, problems: ConfigProblem[]): void {
  checkHttpUrl(c.public.url, '/public/url', problems, true);
  checkHttpUrl(c.upstreams.webapp, '/upstreams/webapp', problems, false);
  checkHttpUrl(c.upstreams.apiserver, '/upstreams/apiserver', problems, false);
  const ascii = domainToASCII(c.tenancy.baseDomain.replace(/\.$/, ''));
  if (!ascii || !/^[a-z0-9.-]+$/.test(ascii) || ascii.split('.').some((l) => l.length === 0 || l.length > 63)) {
    problems.push({ path: '/tenancy/baseDomain', message: 'is not a valid domain name' });
  }
  c.public.trustedProxies.forEach((p, i) => {
    if (!isCidrOrIp(p)) problems.push({ path: `/public/trustedProxies/${i}`, message: 'is not an IP address or CIDR range' });
  });
  const keys = new Set<string>();
  c.admin.credentials.forEach((cred, i) => {
    if (keys.has(cred.key)) problems.push({ path: `/admin/credentials/${i}/key`, message: 'is listed twice' });
    keys.add(cred.key);
  });
  if (!/^(sqlite:.+|postgres(ql)?:\/\/.+)$/.test(c.store.url)) {
    problems.push({ path: '/store/url', message: 'must be sqlite:<file> or postgres://...' });
  }
  if (c.mode === 'authenticate' && c.session.secret === undefined) {
    problems.push({ path: '/session/secret', message: 'is required in authenticate mode (at least 32 characters)' });
  }
  if (c.workers > 1 && c.mode === 'authenticate' && c.redis.url === undefined) {
    problems.push({ path: '/workers', message: 'more than one worker in authenticate mode needs redis.url, so that every worker sees every session' });
  }
  if (c.redis.url !== undefined && !/^rediss?:\/\/.+/.test(c.redis.url)) {
    problems.push({ path: '/redis/url', message: 'must be redis:// or rediss://' });
  }
}

/** Validates a raw object (after env overrides) and fills in defaults. */
function validateConfig(raw: unknown): Config {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, strict: false });
  const validate = ajv.compile(ConfigSchema);
  const data = structuredClone(raw ?? {});
  if (!validate(data)) throw new ConfigError(dedupe(ajvProblems(validate.errors)));
  const config: Config = data;
  const problems: ConfigProblem[] = [];
  semanticChecks(config, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: file, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }]);
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({ path: `${file}:${e.linePos?.[0]?.line ?? '?'}`, message: e.message.split('\n')[0] ?? 'YAML error' })));
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError([{ path: '/', message: 'must be a YAML mapping' }]);
  return value as Record<string, unknown>;
}

/** Loads and validates; throws `ConfigError` listing every problem. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.TENANT_GATE_CONFIG;
  const fromFile = opts.object ?? (file ? readYaml(file) : {});
  const problems: ConfigProblem[] = [];
  const substituted = substituteVars(fromFile, env, problems) as Record<string, unknown>;
  const withEnv = applyEnv(substituted, env, ConfigSchema as never, problems);
  let config: Config | undefined;
  try {
    config = validateConfig(withEnv);
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems);
    else throw err;
  }
  if (problems.length > 0 || !config) throw new ConfigError(problems);
  return config;
}

/** A copy of the configuration safe to print or log: every secret replaced. */
export function redactConfig(config: Config): unknown {
  const copy = structuredClone<Config>(config);
  copy.admin.credentials = copy.admin.credentials.map((c) => ({ key: c.key, secret: '[redacted]' }));
  if (copy.session.secret !== undefined) copy.session.secret = '[redacted]';
  copy.session.previousSecrets = copy.session.previousSecrets.map(() => '[redacted]');
  copy.store.url = redactUrl(copy.store.url);
  if (copy.redis.url !== undefined) copy.redis.url = redactUrl(copy.redis.url);
  copy.upstreams.webapp = redactUrl(copy.upstreams.webapp);
  if (copy.upstreams.apiserver !== undefined) copy.upstreams.apiserver = redactUrl(copy.upstreams.apiserver);
  return copy;
}

const SECRET_PARAMS = /([?&;](?:password|passwd|pwd|pass|secret|token|sslpassword|sslkey|key)=)[^&#;]*/gi;

/**
 * A URL safe to print: the password of its user-info (or the whole user-info when it
 * is a bare token) and the values of credential-bearing query parameters replaced.
 */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i, (_m, scheme: string, info: string) => {
      const colon = info.indexOf(':');
      return `${scheme}${colon < 0 ? '[redacted]' : `${info.slice(0, colon)}:[redacted]`}@`;
    })
    .replace(SECRET_PARAMS, '$1[redacted]');
}
