import { oidcSignIn } from "@/server/app";

export const dynamic = "force-dynamic";

const notSetUp = () =>
  new Response(null, {
    status: 303,
    headers: { location: `/login?${new URLSearchParams({ error: "Single sign-on is not set up on this Conveyor" })}` },
  });

/**
 * The "Sign in with SSO" link (`?next=`): off to the identity provider. A GET is safe here: it only starts a
 * flow bound to this browser's own cookie, which an answer started elsewhere cannot match (state, PKCE).
 */
export const GET = (req: Request) => oidcSignIn()?.start(req) ?? notSetUp();
