// Single sign-on (DESIGN §9) over plain HTTP: OpenID Connect's authorization
// code flow with PKCE, through openid-client.
//
//   POST /api/auth/oidc/start     (the "Sign in with SSO" button) → 303 to the provider
//   GET  /api/auth/oidc/callback  (the redirect URI)              → 303 to where the user was going
//
// What the callback must see again (the PKCE verifier, state, nonce and the
// page to go back to) travels in a cookie of its own: AES-256-GCM sealed with
// a key derived from the secret key, so that it can be neither read nor
// altered; httpOnly, SameSite=Lax (the provider's redirect back is a top-level
// navigation from another site), scoped to /api/auth/oidc, valid ten minutes
// and cleared by the callback whatever its outcome. openid-client checks the
// state and the nonce against it, sends the verifier, and validates the ID
// token (signature against the provider's keys, issuer, audience, expiry).
// The role is decided by server/auth/oidc-role.ts; the user and its session
// are written by signInWithOidc, and the session cookie is the one password
// sign-in sets. A refusal lands on /login with a message and no session.
//
// The provider is the operator's own configuration (OIDC_ISSUER_URL), often
// on an internal network: its requests do not go through HTTP_ALLOWED_HOSTS,
// which governs where commands and webhooks may reach.
import { hkdfSync } from "node:crypto";
import * as oidc from "openid-client";
import type { Db } from "../db/client";
import { decrypt, encrypt } from "../crypto";
import { AppError } from "../errors";
import { readCookie } from "../lib/cookies";
import type { OidcEnv } from "../env";
import { decideRole } from "./oidc-role";
import { safeNext, sessionCookie } from "./http";
import { signInWithOidc } from "./users";

export const OIDC_COOKIE = "conveyor_oidc";
const COOKIE_PATH = "/api/auth/oidc";
const FLOW_TTL_S = 600;
const SCOPE = "openid email profile";

type Flow = { verifier: string; state: string; nonce: string; next: string; exp: number };

type Log = { warn: (obj: object, msg: string) => void; info: (obj: object, msg: string) => void };

export type OidcSignIn = {
  start: (req: Request) => Promise<Response>;
  callback: (req: Request) => Promise<Response>;
};

/**
 * The two handlers for one provider. Discovery (the provider's metadata and,
 * later, its keys) happens at the first sign-in and is kept; a failed one is
 * tried again at the next.
 */
export function createOidcSignIn(o: {
  settings: OidcEnv;
  db: Db;
  secretKey: () => Promise<Buffer>;
  secure: boolean;
  log: Log;
  /** Seconds for each request to the provider. */
  timeoutS?: number;
}): OidcSignIn {
  const s = o.settings;
  const issuer = new URL(s.issuerUrl);
  let config: Promise<oidc.Configuration> | undefined;
  const configuration = () =>
    (config ??= oidc
      .discovery(issuer, s.clientId, s.clientSecret, oidc.ClientSecretBasic(s.clientSecret), {
        // env.ts allows http:// only for a provider on loopback.
        execute: issuer.protocol === "http:" ? [oidc.allowInsecureRequests] : [],
        timeout: o.timeoutS ?? 10,
      })
      .catch((err: unknown) => {
        config = undefined;
        throw err;
      }));

  let cookieKey: Promise<Buffer> | undefined;
  const key = () =>
    (cookieKey ??= o
      .secretKey()
      .then((k) => Buffer.from(hkdfSync("sha256", k, Buffer.alloc(0), "conveyor oidc flow cookie", 32)))
      .catch((err: unknown) => {
        cookieKey = undefined;
        throw err;
      }));

  const flowCookie = (value: string, maxAgeS: number) =>
    `${OIDC_COOKIE}=${value}; Path=${COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age=${maxAgeS}${o.secure ? "; Secure" : ""}`;

  /** Back to /login with the message (and the cookie of the flow cleared): no session. */
  const refuse = (message: string, next = "/") =>
    new Response(null, {
      status: 303,
      headers: {
        location: `/login?${new URLSearchParams({ error: message, next: safeNext(next) })}`,
        "set-cookie": flowCookie("", 0),
      },
    });

  async function start(req: Request): Promise<Response> {
    const form = (req.headers.get("content-type") ?? "").includes("application/x-www-form-urlencoded");
    const body = form ? new URLSearchParams(await req.text()) : new URLSearchParams();
    const next = safeNext(body.get("next") ?? new URL(req.url).searchParams.get("next"));
    let c: oidc.Configuration;
    try {
      c = await configuration();
    } catch (err) {
      o.log.warn(
        { err: reasonOf(err), issuer: s.issuerUrl },
        "single sign-on: the identity provider's metadata could not be read",
      );
      return refuse(
        `Single sign-on is not available right now: the identity provider (${issuer.host}) did not answer as expected. Try again in a moment; if it persists, tell your administrator.`,
        next,
      );
    }
    const flow: Flow = {
      verifier: oidc.randomPKCECodeVerifier(),
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      next,
      exp: Date.now() + FLOW_TTL_S * 1000,
    };
    const url = oidc.buildAuthorizationUrl(c, {
      redirect_uri: s.redirectUri,
      scope: SCOPE,
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: "S256",
      state: flow.state,
      nonce: flow.nonce,
    });
    const sealed = encrypt(await key(), JSON.stringify(flow));
    return new Response(null, {
      status: 303,
      headers: { location: url.href, "set-cookie": flowCookie(sealed, FLOW_TTL_S), "cache-control": "no-store" },
    });
  }

  async function openFlow(req: Request): Promise<Flow | null> {
    const sealed = readCookie(req.headers.get("cookie"), OIDC_COOKIE);
    if (!sealed) return null;
    try {
      const f = JSON.parse(decrypt(await key(), sealed)) as Flow;
      return typeof f.exp === "number" && f.exp > Date.now() ? f : null;
    } catch {
      return null; // altered, or sealed with another key
    }
  }

  async function callback(req: Request): Promise<Response> {
    const params = new URL(req.url).searchParams;
    const flow = await openFlow(req);
    if (!flow)
      return refuse(
        "The sign-in with SSO could not be finished: it took longer than 10 minutes, or was started in another browser. Sign in again.",
      );
    const providerError = params.get("error");
    if (providerError) {
      const description = params.get("error_description");
      o.log.info({ error: providerError, description }, "single sign-on: refused by the identity provider");
      return refuse(
        `Your identity provider did not sign you in: ${(description || providerError).slice(0, 300)}`,
        flow.next,
      );
    }
    // The URL the provider redirected to, as registered (PUBLIC_URL's), with its answer; openid-client derives
    // the redirect_uri it sends with the code from it.
    const current = new URL(s.redirectUri);
    current.search = params.toString();
    let claims: Record<string, unknown>;
    try {
      const c = await configuration();
      const tokens = await oidc.authorizationCodeGrant(c, current, {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
      const idToken = tokens.claims();
      if (!idToken) throw new Error("no ID token in the token response");
      // Providers put the profile claims (email, name, groups) in the ID token, in the userinfo answer, or both.
      const info =
        tokens.access_token && c.serverMetadata().userinfo_endpoint
          ? await oidc.fetchUserInfo(c, tokens.access_token, idToken.sub)
          : {};
      claims = { ...info, ...idToken };
    } catch (err) {
      const reason = reasonOf(err);
      o.log.warn({ err: reason }, "single sign-on: the provider's answer was refused");
      const state = /"state"/.test(reason);
      return refuse(
        state
          ? "The sign-in with SSO was refused: the answer that came back does not belong to the sign-in this browser started (state mismatch). Sign in again."
          : `The sign-in with SSO was refused: the identity provider's answer could not be verified (${reason.slice(0, 200)}). Sign in again; if it persists, tell your administrator.`,
        flow.next,
      );
    }
    const iss = String(claims.iss);
    const sub = String(claims.sub);
    const decision = decideRole(claims, { roleClaim: s.roleClaim, defaultRole: s.defaultRole });
    if (!decision.ok) {
      o.log.info({ iss, sub }, "single sign-on: no role for this account");
      return refuse(decision.message, flow.next);
    }
    const email = typeof claims.email === "string" ? claims.email : "";
    const nameClaim = [claims.name, claims.preferred_username].find((v) => typeof v === "string" && v.trim());
    try {
      const r = await signInWithOidc(
        o.db,
        {
          issuer: iss,
          subject: sub,
          email,
          name: typeof nameClaim === "string" ? nameClaim.trim().slice(0, 200) : null,
        },
        decision.role,
      );
      const headers = new Headers({ location: flow.next, "cache-control": "no-store" });
      headers.append("set-cookie", sessionCookie(r.sessionToken, o.secure));
      headers.append("set-cookie", flowCookie("", 0));
      return new Response(null, { status: 303, headers });
    } catch (err) {
      if (err instanceof AppError) {
        o.log.info({ iss, sub, why: err.message }, "single sign-on: refused");
        return refuse(err.message, flow.next);
      }
      throw err;
    }
  }

  return { start, callback };
}

/** The most specific message of an openid-client error (the library's own wraps the check that failed). */
function reasonOf(err: unknown): string {
  const e = err as { message?: unknown; cause?: { message?: unknown } } | null;
  const inner = typeof e?.cause?.message === "string" ? e.cause.message : undefined;
  const outer = typeof e?.message === "string" ? e.message : String(err);
  return inner && inner !== outer ? `${outer}: ${inner}` : outer;
}
