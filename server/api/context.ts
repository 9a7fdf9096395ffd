import type { ApiDeps } from "./deps";
import { authenticateToken, type TokenPrincipal } from "../auth/tokens";
import { sessionUser, SESSION_COOKIE, type UserPrincipal } from "../auth/users";

export type Principal = TokenPrincipal | UserPrincipal;

/** Reads a request header by lower-case name (works for fetch Headers and node:http alike). */
export type HeaderReader = (name: string) => string | null;

export type Context = ApiDeps & {
  principal: Principal | null;
  /** A credential was sent but is unknown, revoked or expired: refused even where none is needed. */
  credentialRejected: boolean;
  header: HeaderReader;
};

export function readCookie(header: string | null, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) {
      const value = part.slice(i + 1).trim();
      try {
        return decodeURIComponent(value);
      } catch {
        return value; // malformed %-escapes: taken as is (no session has such a token)
      }
    }
  }
  return null;
}

/** Bearer token first (clients, automation); otherwise the console's session cookie. */
export async function createContext(deps: ApiDeps, header: HeaderReader): Promise<Context> {
  const auth = header("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    const principal = m ? await authenticateToken(deps.db, m[1]!, deps.tokenCache) : null;
    return { ...deps, header, principal, credentialRejected: principal === null };
  }
  const session = readCookie(header("cookie"), SESSION_COOKIE);
  if (session) {
    const principal = await sessionUser(deps.db, session);
    // An expired session is not an error for public procedures: the console simply asks to sign in.
    return { ...deps, header, principal, credentialRejected: false };
  }
  return { ...deps, header, principal: null, credentialRejected: false };
}

/** Who did it, as the audit log and command details show it. */
export const actorName = (p: Principal) => (p.kind === "user" ? p.email : `token:${p.name}`);
