import { appDeps } from "@/server/app";
import { env } from "@/server/env";
import { handleSignIn } from "@/server/auth/http";

export const dynamic = "force-dynamic";
export const POST = (req: Request) =>
  handleSignIn(appDeps().db, req, {
    secure: env().PUBLIC_URL.startsWith("https:"),
    trustProxy: env().TRUST_PROXY,
    passwordLogin: env().PASSWORD_LOGIN,
  });
