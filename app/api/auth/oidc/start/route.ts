import { oidcSignIn } from "@/server/app";

export const dynamic = "force-dynamic";

const notSetUp = () =>
  new Response(null, {
    status: 303,
    headers: { location: `/login?${new URLSearchParams({ error: "Single sign-on is not set up on this Conveyor" })}` },
  });

/** The "Sign in with SSO" button: off to the identity provider. */
export const POST = (req: Request) => oidcSignIn()?.start(req) ?? notSetUp();
