/**
 * The gateway's own login addresses: `/login/<tenant>` with form-encoded parameters.
 */

/** Values that form encoding leaves as they are. */
const PLAIN = /^[A-Za-z0-9*._-]*$/;
/** What `encodeURIComponent` keeps or spells differently from form encoding. */
const NOT_FORM = /[!'()~]|%20/g;

function formComponent(value: string): string {
  if (PLAIN.test(value)) return value;
  let encoded: string;
  try {
    encoded = encodeURIComponent(value);
  } catch {
    return new URLSearchParams([['', value]]).toString().slice(1);
  }
  return encoded.replace(NOT_FORM, (m) => (m === '%20' ? '+' : `%${m.charCodeAt(0).toString(16).toUpperCase()}`));
}

/**
 * `/login/<tenant>` with a query of the given parameters, in order, encoded as
 * `URLSearchParams` would; undefined and empty values are left out.
 */
export function loginLocation(tenant: string, params: Record<string, string | undefined> = {}): string {
  let query = '';
  for (const key in params) {
    const value = params[key];
    if (value === undefined || value === '') continue;
    query += `${query ? '&' : '?'}${formComponent(key)}=${formComponent(value)}`;
  }
  return `/login/${encodeURIComponent(tenant)}${query}`;
}
