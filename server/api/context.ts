import type { ApiDeps } from "./deps";
import { authenticateToken, type TokenPrincipal } from "../auth/tokens";
import { sessionUser, SESSION_COOKIE, type UserPrincipal } from "../auth/users";
import { readCookie } from "../lib/cookies";

export type Principal = TokenPrincipal | UserPrincipal;

/** Reads a request header by lower-case name (works for fetch Headers and node:http alike). */
export type HeaderReader = (name: string) => string | null;

export type Context = ApiDeps & {
  principal: Principal | null;
  /** A credential was sent but is refused (an unknown or revoked token, or no Bearer scheme): why. Refused even where none is needed. */
  credentialRejected: string | null;
  header: HeaderReader;
};

const NOT_BEARER = "Send the API token as Authorization: Bearer <token>; this Authorization header is not in that form";

/** Bearer token first (clients, automation); otherwise the console's session cookie. */
export async function createContext(deps: ApiDeps, header: HeaderReader): Promise<Context> {
  const auth = header("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    // A token sent bare or under another scheme ("cvy_…", "Token cvy_…") is not looked up: say how to send it.
    if (!m) return { ...deps, header, principal: null, credentialRejected: NOT_BEARER };
    const principal = await authenticateToken(deps.db, m[1]!, deps.tokenCache);
    return {
      ...deps,
      header,
      principal,
      credentialRejected: principal === null ? "The API token is unknown or revoked" : null,
    };
  }
  const session = readCookie(header("cookie"), SESSION_COOKIE);
  if (session) {
    const principal = await sessionUser(deps.db, session);
    // An expired session is not an error for public procedures: the console simply asks to sign in.
    return { ...deps, header, principal, credentialRejected: null };
  }
  return { ...deps, header, principal: null, credentialRejected: null };
}

/** Who did it, as the audit log and command details show it. */
export const actorName = (p: Principal) => (p.kind === "user" ? p.email : `token:${p.name}`);
