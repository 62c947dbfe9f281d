/**
 * Cookie names and Set-Cookie values of the gateway's own cookies.
 *
 * Rules: always HttpOnly and SameSite=Lax, Path=/; on an https public URL also Secure
 * and `__Host-` prefixed (so no subdomain or http page can set or shadow them).
 */

/** Attributes that differ between cookies. */
export interface CookieOptions {
  /** Seconds; 0 deletes the cookie. */
  maxAge: number;
}

/** Builds names and Set-Cookie values for one public scheme. */
export function cookieJar(secure: boolean) {
  const suffix = `; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
  return {
    name: (base: string) => (secure ? `__Host-${base}` : base),
    set: (name: string, value: string, opts: CookieOptions) => `${name}=${value}; Max-Age=${Math.max(0, Math.floor(opts.maxAge))}${suffix}`,
    clear: (name: string) => `${name}=; Max-Age=0${suffix}`,
  };
}
