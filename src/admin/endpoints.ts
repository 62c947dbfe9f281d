/**
 * The admin API's endpoints, declared once: name, summary, request schema and whether
 * credentials are needed. Dispatch (admin-api.ts, one handler per declared name, checked
 * by the compiler) and `/openapi.json` (openapi.ts) are both built from this table.
 */
import type { TSchema } from '@sinclair/typebox';
import { CompanyRef, ProviderList, ProviderRef, RevokeSessions, SaveProvider, UpdateCompanySso } from './payloads.js';

/** One endpoint's declaration. */
export interface EndpointDeclaration {
  summary: string;
  /** The request body's schema; none for endpoints without a body. */
  schema?: TSchema;
  auth: boolean;
}

/** Every admin endpoint (the session endpoints count and end nothing in route mode). */
export const ADMIN_ENDPOINTS = {
  'debug.ping': { summary: 'Answers without credentials.', auth: false },
  'system.update_company_sso_config': {
    summary: "Creates or updates a company's SSO settings (keys given replace, keys left out stay).",
    schema: UpdateCompanySso,
    auth: true,
  },
  'system.get_company_sso_config': { summary: "Reads a company's SSO settings.", schema: CompanyRef, auth: true },
  'system.delete_company_sso_config': { summary: "Deletes a company's SSO settings; its providers stay.", schema: CompanyRef, auth: true },
  'sso.save_provider_configuration': {
    summary: 'Creates or replaces an identity provider of a company; without client_secret the stored one is kept.',
    schema: SaveProvider,
    auth: true,
  },
  'sso.get_provider_configuration': { summary: 'Reads one provider (never its client_secret).', schema: ProviderRef, auth: true },
  'sso.get_all_provider_configurations': { summary: 'Lists providers, of one company or all.', schema: ProviderList, auth: true },
  'sso.delete_provider_configuration': { summary: 'Deletes one provider.', schema: ProviderRef, auth: true },
  'sso.get_sessions_summary': { summary: "Counts a company's live sessions: {count, by_provider}.", schema: CompanyRef, auth: true },
  'sso.revoke_sessions': {
    summary: "Ends one user's sessions (user: subject or verified email) or all of a company's (all: true), on every replica: {revoked}.",
    schema: RevokeSessions,
    auth: true,
  },
} as const satisfies Record<string, EndpointDeclaration>;

/** The name of an admin endpoint. */
export type EndpointName = keyof typeof ADMIN_ENDPOINTS;
