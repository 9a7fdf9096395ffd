import type { ApiDeps } from "./deps";
import { authenticateToken, type TokenPrincipal } from "../auth/tokens";

export type Principal = TokenPrincipal;

/** Reads a request header by lower-case name (works for fetch Headers and node:http alike). */
export type HeaderReader = (name: string) => string | null;

export type Context = ApiDeps & {
  principal: Principal | null;
  /** A credential was sent but is unknown or revoked: refused even where none is needed. */
  credentialRejected: boolean;
  header: HeaderReader;
};

export async function createContext(deps: ApiDeps, header: HeaderReader): Promise<Context> {
  const auth = header("authorization");
  if (!auth) return { ...deps, header, principal: null, credentialRejected: false };
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  const principal = m ? await authenticateToken(deps.db, m[1]!, deps.tokenCache) : null;
  return { ...deps, header, principal, credentialRejected: principal === null };
}
