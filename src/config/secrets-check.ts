/**
 * Placeholder and weak secrets: refused where the admin listener is reachable.
 *
 * Rules:
 * - the secrets are the admin credentials' secrets, `session.secret`,
 *   `session.previousSecrets` and the passwords inside `store.url` and `redis.url`;
 * - a secret is weak when it is a placeholder shipped with tenant-gate (the defaults in
 *   config/default.yaml, the example values under deploy/), says `change-me` or
 *   `REPLACE`, or is shorter than {@link MIN_SECRET_LENGTH} characters;
 * - when the admin listener binds anything but a loopback address, a weak secret stops
 *   the start (a `ConfigError` naming each path); on loopback it is a warning;
 * - messages name the path and the reason, never the value.
 */
import { isIP } from 'node:net';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { Config } from './schema.js';

/** Shortest secret accepted on a reachable admin listener. */
const MIN_SECRET_LENGTH = 16;

/** Values shipped as examples: config/default.yaml and the deploy/ manifests. */
const PLACEHOLDERS = new Set(
  [
    'change-me-admin-secret',
    'REPLACE-with-at-least-8-random-characters',
    'REPLACE-with-at-least-32-random-characters-0123456789',
    'REPLACE-password',
    'secret',
    'password',
    'changeme',
  ].map((s) => s.toLowerCase()),
);

const PLACEHOLDER_WORDS = /change[-_ ]?me|replace/i;

/** Whether a listener bound to this host is reachable only from this machine. */
function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:') && isIP(h.slice(7)) === 4) return h.slice(7).startsWith('127.');
  return h === '::1' || h === '0:0:0:0:0:0:0:1';
}

/** The password inside a connection URL, if any. */
function urlPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    const fromQuery = u.searchParams.get('password');
    return u.password ? decodeURIComponent(u.password) : (fromQuery ?? undefined);
  } catch {
    return undefined;
  }
}

/** Why a secret is weak, or undefined. */
function weakness(secret: string): string | undefined {
  if (PLACEHOLDERS.has(secret.toLowerCase()) || PLACEHOLDER_WORDS.test(secret)) return 'is a placeholder value shipped with tenant-gate; set a random secret';
  if (secret.length < MIN_SECRET_LENGTH) return `is shorter than ${MIN_SECRET_LENGTH} characters`;
  return undefined;
}

/** Every weak secret in the configuration, with its path. */
function weakSecrets(config: Config): ConfigProblem[] {
  const found: Array<[string, string | undefined]> = [
    ...config.admin.credentials.map((c, i): [string, string] => [`/admin/credentials/${i}/secret`, c.secret]),
    ['/session/secret', config.session.secret],
    ...config.session.previousSecrets.map((s, i): [string, string] => [`/session/previousSecrets/${i}`, s]),
    ['/store/url (password)', urlPassword(config.store.url)],
    ['/redis/url (password)', urlPassword(config.redis.url)],
  ];
  const problems: ConfigProblem[] = [];
  for (const [path, secret] of found) {
    const why = secret === undefined || secret === '' ? undefined : weakness(secret);
    if (why) problems.push({ path, message: why });
  }
  return problems;
}

/**
 * Checks the secrets against where the admin listener binds: throws a `ConfigError`
 * when it is reachable from elsewhere, otherwise returns the warnings to show.
 */
export function checkSecrets(config: Config): ConfigProblem[] {
  const problems = weakSecrets(config);
  if (problems.length === 0 || isLoopbackHost(config.admin.host)) return problems;
  throw new ConfigError(problems.map((p) => ({ path: p.path, message: `${p.message} (admin.host ${config.admin.host} is not a loopback address)` })));
}
