import { oidcSignIn } from "@/server/app";

export const dynamic = "force-dynamic";

const notSetUp = () =>
  new Response(null, {
    status: 303,
    headers: { location: `/login?${new URLSearchParams({ error: "Single sign-on is not set up on this Conveyor" })}` },
  });

/** The redirect URI registered at the identity provider. */
export const GET = (req: Request) => oidcSignIn()?.callback(req) ?? notSetUp();
