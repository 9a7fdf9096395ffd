import { redirect } from "next/navigation";
import { currentUser } from "@/lib/session";
import { cx } from "@/app/_components/cx";
import { env, oidcEnv } from "@/server/env";

export const dynamic = "force-dynamic";
export const metadata = { title: "Sign in · Conveyor" };

const FIELD = cx(
  "block w-full rounded-lg border border-slate-300 px-3 py-2 text-sm shadow-sm",
  "focus:border-sky-500 focus:outline-none focus:ring-2 focus:ring-sky-500/20",
);

const safeNext = (n: unknown) => (typeof n === "string" && n.startsWith("/") && !n.startsWith("//") ? n : "/");

export default async function LoginPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const sp = await searchParams;
  const next = safeNext(Array.isArray(sp.next) ? sp.next[0] : sp.next);
  const error = Array.isArray(sp.error) ? sp.error[0] : sp.error;
  // After a refused sign-in the email comes back (server/auth/http.ts): only the password is to be typed again.
  const email = (Array.isArray(sp.email) ? sp.email[0] : sp.email) ?? "";
  const me = await currentUser();
  if (me) redirect(me.mustChangePassword ? "/account?first=1" : next);
  const sso = oidcEnv(env()) !== undefined;
  const password = env().PASSWORD_LOGIN;
  return (
    <main className="flex min-h-screen items-center justify-center bg-gradient-to-b from-slate-50 to-slate-100 px-4">
      <div className="w-full max-w-sm">
        <div className="mb-6 flex items-center justify-center gap-2 text-lg font-semibold tracking-tight text-slate-900">
          <span className="flex h-8 w-8 items-center justify-center rounded-lg bg-slate-900 text-white" aria-hidden>
            <svg viewBox="0 0 20 20" className="h-4 w-4" fill="currentColor">
              <path d="M2 6h12l-3-3h2.5L18 7.5 13.5 12H11l3-3H2V6Zm16 8H6l3 3H6.5L2 12.5 6.5 8H9l-3 3h12v3Z" />
            </svg>
          </span>
          Conveyor
        </div>
        <div className="rounded-xl border border-slate-200 bg-white p-6 shadow-sm">
          <h1 className="text-base font-semibold text-slate-900">Sign in to the console</h1>
          <p className="mt-1 text-sm text-slate-500">Watch commands, retry or compensate them, and manage access.</p>
          {error ? (
            <p role="alert" className="mt-4 rounded-lg border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
              {error}
            </p>
          ) : null}
          {sso ? (
            <form method="post" action="/api/auth/oidc/start" className="mt-5">
              <input type="hidden" name="next" value={next} />
              <button
                type="submit"
                autoFocus={!password}
                className="flex w-full items-center justify-center gap-2 rounded-lg bg-sky-700 px-3 py-2 text-sm font-medium text-white shadow-sm hover:bg-sky-600"
              >
                <svg viewBox="0 0 20 20" className="h-4 w-4" fill="currentColor" aria-hidden>
                  <path d="M10 1.5 3 4.5v5c0 4.3 3 8 7 9 4-1 7-4.7 7-9v-5l-7-3Zm0 4a2.5 2.5 0 0 1 1 4.8V14H9v-3.7a2.5 2.5 0 0 1 1-4.8Z" />
                </svg>
                Sign in with SSO
              </button>
              <p className="mt-2 text-center text-xs text-slate-500">
                With your company account, through your identity provider.
              </p>
            </form>
          ) : null}
          {sso && password ? (
            <div className="mt-5 flex items-center gap-3 text-xs text-slate-400" aria-hidden>
              <span className="h-px flex-1 bg-slate-200" />
              or with a local account
              <span className="h-px flex-1 bg-slate-200" />
            </div>
          ) : null}
          {password ? (
            <form method="post" action="/api/auth/login" className={sso ? "mt-1" : ""}>
              <input type="hidden" name="next" value={next} />
              <div className="mt-5 space-y-4">
                <div>
                  <label htmlFor="email" className="mb-1 block text-sm font-medium text-slate-700">
                    Email
                  </label>
                  <input
                    id="email"
                    name="email"
                    type="email"
                    autoComplete="username"
                    required
                    autoFocus={!email && !sso}
                    defaultValue={email}
                    className={FIELD}
                  />
                </div>
                <div>
                  <label htmlFor="password" className="mb-1 block text-sm font-medium text-slate-700">
                    Password
                  </label>
                  <input
                    id="password"
                    name="password"
                    type="password"
                    autoComplete="current-password"
                    required
                    autoFocus={!!email}
                    className={FIELD}
                  />
                </div>
              </div>
              <button
                type="submit"
                className={cx(
                  "mt-6 w-full rounded-lg px-3 py-2 text-sm font-medium shadow-sm",
                  sso
                    ? "border border-slate-300 bg-white text-slate-800 hover:bg-slate-50"
                    : "bg-slate-900 text-white hover:bg-slate-700",
                )}
              >
                Sign in
              </button>
            </form>
          ) : null}
        </div>
        <p className="mt-4 text-center text-xs text-slate-500">
          {sso
            ? "Your role comes from your identity provider. No access? Ask your administrator."
            : "No account? Ask an admin of this Conveyor to create one."}
        </p>
      </div>
    </main>
  );
}
