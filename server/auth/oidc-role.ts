// Which role a user signing in with SSO gets (DESIGN §9): the one the claim
// named by OIDC_ROLE_CLAIM carries, else OIDC_DEFAULT_ROLE, and "none" there
// refuses the sign-in. Pure: no database, no request.
import type { UserRole } from "../db/users";

const RANK: Record<UserRole, number> = { viewer: 1, operator: 2, admin: 3 };
const isRole = (v: string): v is UserRole => Object.hasOwn(RANK, v);

export type RoleDecision = { ok: true; role: UserRole; from: "claim" | "default" } | { ok: false; message: string };

/**
 * The claim's value: the claim of exactly that name, else (for a name with
 * dots, such as `realm_access.roles`) the value at that path of nested
 * objects. A name with dots that is itself a claim (`https://example.com/role`)
 * is found by the first rule.
 */
export function claimValue(claims: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  if (!name.includes(".")) return undefined;
  let v: unknown = claims;
  for (const part of name.split(".")) {
    if (v === null || typeof v !== "object" || Array.isArray(v) || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/**
 * The role from the claim's value: a string `viewer`, `operator` or `admin`
 * (case and surrounding spaces do not matter), or a list of values (the
 * provider's groups) of which the highest such role counts; other values are
 * ignored. Without one, the default role; a default of `none` refuses.
 */
export function decideRole(
  claims: Record<string, unknown>,
  opts: { roleClaim: string; defaultRole: UserRole | "none" },
): RoleDecision {
  const raw = claimValue(claims, opts.roleClaim);
  const values = (Array.isArray(raw) ? raw : [raw])
    .filter((v): v is string => typeof v === "string")
    .map((v) => v.trim().toLowerCase())
    .filter(isRole);
  const best = values.sort((a, b) => RANK[b] - RANK[a])[0];
  if (best) return { ok: true, role: best, from: "claim" };
  if (opts.defaultRole !== "none") return { ok: true, role: opts.defaultRole, from: "default" };
  return {
    ok: false,
    message: `Your identity provider gave this account no Conveyor role (claim "${opts.roleClaim}": viewer, operator or admin), and accounts without one may not sign in. Ask your administrator for access.`,
  };
}
