/**
 * `tenant-gate export` and `tenant-gate import FILE`: the directory as YAML or JSON,
 * to move it between stores and to keep tenants in Git.
 *
 * Rules: an export never contains a client secret (`has_client_secret` says whether
 * one is stored); an import goes through the same validation as the admin API,
 * checks the whole file before writing anything, and keeps a stored secret when a
 * provider comes without one.
 */
import { Type, type Static } from '@sinclair/typebox';
import { stringify } from 'yaml';
import { companyView, providerView, type DirectoryAdmin } from '../admin/directory-admin.js';
import { createValidators, SaveProvider, UpdateCompanySso, type SaveProviderBody } from '../admin/payloads.js';
import type { TenantStore } from '../directory/types.js';
import { GatewayError, ValidationError } from '../errors.js';
import { normalizeDomain } from '../tenancy/host.js';
import { tenantKey } from '../tenancy/tenant-id.js';

/** A domain or host as the admin API stores it (IDN to punycode, case, trailing dot). */
const directoryName = (name: string): string => normalizeDomain(name) ?? name.toLowerCase();

const ProviderEntry = Type.Object(
  { provider: Type.String(), configuration: Type.Record(Type.String(), Type.Unknown()) },
  { additionalProperties: true },
);
const CompanyEntry = Type.Object(
  { company: Type.String(), sso: Type.Optional(Type.Record(Type.String(), Type.Unknown())), providers: Type.Optional(Type.Array(ProviderEntry)) },
  { additionalProperties: false },
);
/** The file format of import and export. */
const DirectoryFile = Type.Object({ version: Type.Optional(Type.Literal(1)), companies: Type.Array(CompanyEntry) }, { additionalProperties: false });
export type DirectoryFileData = Static<typeof DirectoryFile>;

/** The whole directory in the file format, without secrets. */
export async function exportDirectory(store: TenantStore): Promise<DirectoryFileData> {
  const companies = await store.listCompanies();
  const providers = await store.listProviders();
  const ids = new Set([...companies.map((c) => c.company), ...providers.map((p) => p.company)]);
  return {
    version: 1,
    companies: [...ids].sort().map((id) => {
      const c = companies.find((x) => x.company === id);
      const ps = providers.filter((p) => p.company === id).map((p) => {
        const v = providerView(p) as { provider: string; configuration: Record<string, unknown> };
        return { provider: v.provider, configuration: v.configuration };
      });
      return { company: id, ...(c ? { sso: (companyView(c) as { sso: Record<string, unknown> }).sso } : {}), ...(ps.length ? { providers: ps } : {}) };
    }),
  };
}

/** Renders an export as YAML or JSON. */
export function renderDirectory(data: DirectoryFileData, format: 'yaml' | 'json'): string {
  return format === 'json' ? `${JSON.stringify(data, null, 2)}\n` : stringify(data);
}

/** One problem found in an import file, with where it is. */
export interface ImportProblem {
  path: string;
  message: string;
}

/** Checks a parsed import file completely, as the admin API would; returns every problem found. */
export function checkDirectoryFile(raw: unknown, admin: DirectoryAdmin): { data?: DirectoryFileData; problems: ImportProblem[] } {
  const validate = createValidators();
  const problems: ImportProblem[] = [];
  let data: DirectoryFileData;
  try {
    data = validate(DirectoryFile, raw);
  } catch (err) {
    return { problems: [{ path: err instanceof ValidationError ? err.field : '/', message: (err as Error).message }] };
  }
  data.companies.forEach((c, i) => {
    try {
      if (c.sso) admin.mergeSso(validate(UpdateCompanySso, { company: c.company, sso: c.sso }).sso, undefined);
    } catch (err) {
      problems.push({ path: `companies.${i} (${c.company})`, message: (err as Error).message });
    }
    (c.providers ?? []).forEach((p, j) => {
      const { has_client_secret: _, ...configuration } = p.configuration;
      try {
        admin.checkProvider(validate(SaveProvider, { provider: p.provider, company: c.company, configuration }).configuration);
      } catch (err) {
        problems.push({ path: `companies.${i}.providers.${j} (${c.company})`, message: (err as Error).message });
      }
    });
  });
  return problems.length ? { problems } : { data, problems };
}

/** Applies a checked file through the admin layer; stops at the first refused write. */
export async function importDirectory(admin: DirectoryAdmin, data: DirectoryFileData): Promise<{ companies: number; providers: number }> {
  let companies = 0;
  let providers = 0;
  for (const c of data.companies) {
    try {
      if (c.sso) {
        await admin.updateCompanySso({ company: c.company, sso: c.sso });
        companies++;
      }
      for (const p of c.providers ?? []) {
        const { has_client_secret: _, ...configuration } = p.configuration;
        await admin.saveProvider({ provider: p.provider, company: c.company, configuration: configuration as SaveProviderBody['configuration'] }); // checked by checkDirectoryFile
        providers++;
      }
    } catch (err) {
      const msg = err instanceof GatewayError ? err.message : String(err);
      throw new Error(`company ${c.company}: ${msg} (${companies} companies and ${providers} providers were written before it)`);
    }
  }
  return { companies, providers };
}

/**
 * Checks that the directory after the import would keep every tenant, domain, host
 * and client_id with one company, before anything is written.
 */
export async function preflightImport(store: TenantStore, data: DirectoryFileData): Promise<ImportProblem[]> {
  const companies = new Map((await store.listCompanies()).map((c) => [c.company, { tenant: c.sso.tenant, domains: c.sso.domains, hosts: c.sso.hosts }]));
  const clients = new Map((await store.listProviders()).map((p) => [`${p.company}\0${p.configuration.id}`, p.configuration.client_id]));
  for (const c of data.companies) {
    const sso = (c.sso ?? {}) as { tenant?: string; domains?: string[]; hosts?: string[] };
    const prev = companies.get(c.company);
    if (c.sso) {
      companies.set(c.company, {
        tenant: sso.tenant ?? prev?.tenant ?? '',
        domains: (sso.domains ?? prev?.domains ?? []).map(directoryName),
        hosts: (sso.hosts ?? prev?.hosts ?? []).map(directoryName),
      });
    }
    for (const p of c.providers ?? []) clients.set(`${c.company}\0${String(p.configuration.id)}`, String(p.configuration.client_id));
  }
  const problems: ImportProblem[] = [];
  const owners = new Map<string, string>();
  const claim = (kind: string, value: string, owner: string) => {
    const key = `${kind}\0${value}`;
    const other = owners.get(key);
    if (other !== undefined && other !== owner) problems.push({ path: `${kind} ${value}`, message: `would belong to both ${other} and ${owner}` });
    owners.set(key, owner);
  };
  for (const [id, c] of companies) {
    claim('tenant', tenantKey(c.tenant), id);
    for (const d of c.domains) claim('domain', d, id);
    for (const h of c.hosts) claim('host', h, id);
  }
  for (const [key, clientId] of clients) claim('client_id', clientId, key.split('\0').join('/'));
  return problems;
}
