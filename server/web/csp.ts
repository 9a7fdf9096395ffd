import type http from "node:http";

/**
 * The console's CSP (next.config.ts) has `form-action 'self'`, which a browser
 * also applies to the redirects a form submission gets. The sign-in page's
 * "Sign in with SSO" form is answered with a redirect to the identity provider,
 * so that page's policy names the provider's origin too; every other page keeps
 * `'self'` alone. Next sets the configured headers with `setHeader`, so the
 * value is amended there, before anything is written.
 */
export function allowFormTarget(res: http.ServerResponse, origin: string): void {
  const set = res.setHeader.bind(res);
  res.setHeader = (name: string, value: number | string | readonly string[]) =>
    set(
      name,
      name.toLowerCase() === "content-security-policy" && typeof value === "string"
        ? value.replace("form-action 'self'", `form-action 'self' ${origin}`)
        : value,
    );
}
