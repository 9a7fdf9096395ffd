import { appDeps } from "@/server/app";
import { ping } from "@/server/db/client";

export const dynamic = "force-dynamic";

/** Liveness: 200 when the database answers, 503 when it does not. */
export async function GET() {
  const ok = await ping(appDeps().db);
  return Response.json({ status: ok ? "ok" : "unavailable", database: ok ? "up" : "down" }, { status: ok ? 200 : 503, headers: { "cache-control": "no-store" } });
}
