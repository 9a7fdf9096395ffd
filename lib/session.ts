// Server-side session checks for the console pages (server components).
import { cache } from "react";
import { cookies } from "next/headers";
import { redirect } from "next/navigation";
import { appDeps } from "@/server/app";
import { sessionUser, SESSION_COOKIE, type Role } from "@/server/auth/users";

export type Me = { email: string; role: Role; mustChangePassword: boolean; sso: boolean };

/** The signed-in user of this request, or null (one database look-up per request). */
export const currentUser = cache(async (): Promise<Me | null> => {
  const token = (await cookies()).get(SESSION_COOKIE)?.value;
  if (!token) return null;
  const u = await sessionUser(appDeps().db, token);
  return u ? { email: u.email, role: u.role, mustChangePassword: u.mustChangePassword, sso: u.sso } : null;
});

/**
 * The signed-in user, or a redirect: to /login?next=<path> without a session,
 * to /account?first=1 while the password must be changed. A page that needs a
 * role checks it and says so (app/_components/needs-role.tsx).
 */
export async function requireUser(path: string): Promise<Me> {
  const me = await currentUser();
  if (!me) redirect(`/login?next=${encodeURIComponent(path)}`);
  if (me.mustChangePassword && !path.startsWith("/account")) redirect("/account?first=1");
  return me;
}

/** Rebuilds "path?query" from a page's searchParams. */
export function withQuery(path: string, sp: Record<string, string | string[] | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(sp))
    for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) q.append(k, x);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
