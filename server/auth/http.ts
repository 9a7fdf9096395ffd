// Sign-in and sign-out over plain HTTP (a form post works without JavaScript).
// The session cookie is httpOnly, SameSite=Lax, Secure behind https.
import type { Db } from "../db/client";
import { AppError } from "../errors";
import { signIn, signOut, SESSION_COOKIE, SESSION_MAX_MS } from "./users";
import { readCookie } from "../lib/cookies";

// Per-address throttle for failed sign-ins (accounts also lock after 5 failures in a row).
const failures = new Map<string, { n: number; until: number }>();
const WINDOW_MS = 60_000;
const MAX_PER_WINDOW = 20;

function cookie(value: string, maxAgeS: number, secure: boolean) {
  return `${SESSION_COOKIE}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeS}${secure ? "; Secure" : ""}`;
}

/** The session cookie a sign-in sets, by password or with SSO (server/auth/oidc.ts). */
export const sessionCookie = (sessionToken: string, secure: boolean) =>
  cookie(sessionToken, SESSION_MAX_MS / 1000, secure);

/** Only same-site relative paths are followed after sign-in (no open redirect). */
export const safeNext = (next: unknown) =>
  typeof next === "string" && next.startsWith("/") && !next.startsWith("//") ? next : "/";

/** Set by the web process (server/web/main.ts) from the socket, over anything the client sent. */
export const PEER_HEADER = "x-conveyor-peer";

/**
 * The client's address for the sign-in throttle: the first X-Forwarded-For
 * entry only when TRUST_PROXY says a proxy sets it (a client can write any
 * X-Forwarded-For it likes), else the socket's peer.
 */
export function clientAddress(headers: Headers, trustProxy: boolean): string {
  const forwarded = trustProxy ? headers.get("x-forwarded-for")?.split(",")[0]?.trim() : undefined;
  return forwarded || headers.get(PEER_HEADER) || "local";
}

export async function handleSignIn(
  db: Db,
  req: Request,
  opts: { secure: boolean; trustProxy?: boolean; passwordLogin?: boolean },
): Promise<Response> {
  const form = (req.headers.get("content-type") ?? "").includes("application/x-www-form-urlencoded");
  const body: Record<string, unknown> = form
    ? Object.fromEntries(new URLSearchParams(await req.text()))
    : await req.json().catch(() => ({}));
  // PASSWORD_LOGIN=false: no password is even looked at.
  if (opts.passwordLogin === false)
    return answer(form, 403, "Sign-in with a password is turned off here: sign in with SSO", body.next, "");
  const address = clientAddress(req.headers, opts.trustProxy ?? false);
  const f = failures.get(address);
  const now = Date.now();
  const email = typeof body.email === "string" ? body.email : "";
  if (f && f.until > now && f.n >= MAX_PER_WINDOW)
    return answer(form, 429, "Too many failed sign-ins from here; wait a minute", body.next, email);
  const password = typeof body.password === "string" ? body.password : "";
  if (!email || !password) return answer(form, 400, "Enter your email and password", body.next, email);
  try {
    const { sessionToken, user } = await signIn(db, email, password);
    failures.delete(address);
    const next = user.mustChangePassword ? "/account?first=1" : safeNext(body.next);
    const headers = new Headers({ "set-cookie": sessionCookie(sessionToken, opts.secure) });
    if (form) {
      headers.set("location", next);
      return new Response(null, { status: 303, headers });
    }
    headers.set("content-type", "application/json");
    return new Response(JSON.stringify({ ok: true, next, mustChangePassword: user.mustChangePassword }), {
      status: 200,
      headers,
    });
  } catch (err) {
    if (err instanceof AppError) {
      const cur = f && f.until > now ? f : { n: 0, until: now + WINDOW_MS };
      cur.n++;
      failures.set(address, cur);
      return answer(form, err.code === "TOO_MANY_REQUESTS" ? 429 : 401, err.message, body.next, email);
    }
    throw err;
  }
}

/** A refused sign-in; the form comes back with the message and the email typed (never the password). */
function answer(form: boolean, status: number, message: string, next: unknown, email: string): Response {
  if (form) {
    const q = new URLSearchParams({ error: message, next: safeNext(next) });
    if (email) q.set("email", email.slice(0, 200));
    return new Response(null, { status: 303, headers: { location: `/login?${q}` } });
  }
  return Response.json({ ok: false, error: message }, { status });
}

export async function handleSignOut(db: Db, req: Request, opts: { secure: boolean }): Promise<Response> {
  const token = readCookie(req.headers.get("cookie"), SESSION_COOKIE);
  if (token) await signOut(db, token);
  return new Response(null, { status: 303, headers: { location: "/login", "set-cookie": cookie("", 0, opts.secure) } });
}
