import type { ApiDeps } from "./deps";
import { authenticateToken, type TokenPrincipal } from "../auth/tokens";

export type Principal = TokenPrincipal;

export type Context = ApiDeps & {
  principal: Principal | null;
  /** A credential was sent but is unknown or revoked: refused even where none is needed. */
  credentialRejected: boolean;
  req: Request;
};

export async function createContext(deps: ApiDeps, req: Request): Promise<Context> {
  const auth = req.headers.get("authorization");
  if (!auth) return { ...deps, req, principal: null, credentialRejected: false };
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  const principal = m ? await authenticateToken(deps.db, m[1]!, deps.tokenCache) : null;
  return { ...deps, req, principal, credentialRejected: principal === null };
}
