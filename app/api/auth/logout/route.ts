import { appDeps } from "@/server/app";
import { env } from "@/server/env";
import { handleSignOut } from "@/server/auth/http";

export const dynamic = "force-dynamic";
export const POST = (req: Request) =>
  handleSignOut(appDeps().db, req, { secure: env().PUBLIC_URL.startsWith("https:") });
