/**
 * Environment overrides and `${VAR}` substitution.
 *
 * - `TENANT_GATE__a__b=value` sets key `a.b`; segments match schema keys without
 *   regard to case. Values stay strings (the validator coerces numbers and booleans);
 *   a value starting with `[` or `{` is parsed as JSON.
 * - The seed's names map to `sso.*`.
 * - `${VAR}` and `${VAR:-default}` inside YAML string values are replaced from the
 *   environment; an unset variable without a default is an error at that path.
 */
import type { ConfigProblem } from '../errors.js';

/** Seed environment names and the config path each one sets. */
const SEED_ENV_NAMES: Readonly<Record<string, readonly string[]>> = {
  CLEARML__services__login__sso__tenant_login: ['sso', 'tenant_login'],
  CLEARML__services__login__sso__allow_settings_providers: ['sso', 'allow_settings_providers'],
  WEBSERVER__onlyPasswordLogin: ['sso', 'only_password_login'],
};

const PREFIX = 'TENANT_GATE__';
const VAR_PATTERN = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type SchemaNode = { properties?: Record<string, SchemaNode>; type?: unknown; items?: SchemaNode };

/** Replaces `${VAR}` in every string of a parsed YAML document. */
export function substituteVars(value: unknown, env: NodeJS.ProcessEnv, problems: ConfigProblem[], path = ''): unknown {
  if (typeof value === 'string') {
    return value.replace(VAR_PATTERN, (whole, name: string, def: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (def !== undefined) return def;
      problems.push({ path: path || '/', message: `environment variable ${name} is not set` });
      return whole;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteVars(v, env, problems, `${path}/${i}`));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteVars(v, env, problems, `${path}/${k}`);
    return out;
  }
  return value;
}

function parseEnvValue(raw: string): Json {
  const trimmed = raw.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    try {
      return JSON.parse(trimmed) as Json;
    } catch {
      return raw;
    }
  }
  return raw;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/** Maps `TENANT_GATE__` segments to schema keys (case-insensitive); unknown keys are problems. */
function resolveEnvPath(segments: string[], schema: SchemaNode): string[] | undefined {
  const out: string[] = [];
  let node: SchemaNode | undefined = schema;
  for (const seg of segments) {
    const props: Record<string, SchemaNode> | undefined = node?.properties;
    if (!props) return undefined;
    const key: string | undefined = Object.keys(props).find((k) => k.toLowerCase() === seg.toLowerCase());
    if (key === undefined) return undefined;
    out.push(key);
    node = props[key];
  }
  return out;
}

/** Applies environment overrides onto a raw (unvalidated) config object. */
export function applyEnv(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  schema: SchemaNode,
  problems: ConfigProblem[],
): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const [name, value] of Object.entries(SEED_ENV_NAMES)) {
    const v = env[name];
    if (v !== undefined && v !== '') setPath(out, [...value], v.trim().toLowerCase());
  }
  for (const [name, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!name.startsWith(PREFIX) || value === undefined) continue;
    const segments = name.slice(PREFIX.length).split('__');
    const path = segments.every((s) => s.length > 0) ? resolveEnvPath(segments, schema) : undefined;
    if (!path) {
      problems.push({ path: `env ${name}`, message: 'does not name a configuration key' });
      continue;
    }
    setPath(out, path, parseEnvValue(value));
  }
  return out;
}
